"""`valence score`: the same model and output fields as the worker, without Kafka."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from models.base import ModelInfo, TextScore
from schemas.events import EMOTIONS
from stream.codec import model_fields, score_fields
from stream.config import Settings
from stream.errors import ValenceError
from stream.factory import load_configured_scorer, recommendation_step


def score_record(
    text: str, score: TextScore, model: ModelInfo, extras: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The worker's output fields for one text (no event ids, no Kafka timings)."""
    return {"text": text, "model": model_fields(model), **score_fields(score, extras)}


def score_lines(settings: Settings, lines: Iterable[str], batch_size: int = 64) -> Iterator[dict]:
    """Score JSONL lines carrying `text` (editor events, labelled data, ...) in batches."""
    scorer = load_configured_scorer(settings)
    step = recommendation_step(settings, scorer)  # the worker's suggestions, same settings
    batch: list[dict[str, Any]] = []

    def flush() -> Iterator[dict[str, Any]]:
        started = time.monotonic()
        texts = [item["text"] for item in batch]
        scores = scorer.score(texts)
        targets = [target_of(item) for item in batch]
        extras = step(texts, scores, targets) if step is not None else [{} for _ in batch]
        elapsed_ms = (time.monotonic() - started) * 1000
        for item, score, extra in zip(batch, scores, extras, strict=True):
            record = score_record(item["text"], score, scorer.info, extra)
            for key in ("event_id", "doc_id", "revision", "target_emotion", "label", "labels"):
                if key in item:
                    record[key] = item[key]
            record["timings"] = {"batch_ms": round(elapsed_ms, 3), "batch_events": len(batch)}
            record["scored_at"] = datetime.now(UTC).isoformat()
            yield record
        batch.clear()

    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ValenceError(f"line {number}: not JSON ({exc})") from exc
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("text"), str)
            or not item["text"].strip()
        ):
            raise ValenceError(f"line {number}: needs a non-empty string field `text`")
        batch.append(item)
        if len(batch) >= batch_size:
            yield from flush()
    if batch:
        yield from flush()


def target_of(item: dict[str, Any]) -> str | None:
    """A line's `target_emotion`, checked like the worker's contract checks it."""
    target = item.get("target_emotion")
    if target is None or target in EMOTIONS:
        return target
    raise ValenceError(f"target_emotion {target!r} is not one of {', '.join(EMOTIONS)}")
