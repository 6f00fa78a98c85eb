"""`valence score`: the same model and output fields as the worker, without Kafka."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson

from models.base import ModelInfo, TextScore
from stream.codec import _emotion, _segment, _sentiment
from stream.config import Settings
from stream.errors import ValenceError
from stream.scoring import load_configured_scorer


def score_record(text: str, score: TextScore, model: ModelInfo) -> dict[str, Any]:
    return {
        "text": text,
        "model": {"name": model.name, "version": model.version},
        "sentiment": _sentiment(score.sentiment),
        "emotion": _emotion(score.emotion, score.emotion_intensity),
        "sentences": [_segment(segment) for segment in score.segments],
    }


def score_lines(settings: Settings, lines: Iterable[str], batch_size: int = 64) -> Iterator[dict]:
    """Score JSONL lines carrying `text` (editor events, labelled data, ...) in batches."""
    scorer = load_configured_scorer(settings)
    batch: list[dict[str, Any]] = []

    def flush() -> Iterator[dict[str, Any]]:
        started = time.monotonic()
        scores = scorer.score([item["text"] for item in batch])
        elapsed_ms = (time.monotonic() - started) * 1000
        for item, score in zip(batch, scores, strict=True):
            record = score_record(item["text"], score, scorer.info)
            for key in ("event_id", "doc_id", "revision", "label", "labels"):
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
