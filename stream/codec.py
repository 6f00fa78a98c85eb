"""The only place bytes become events and scored events become bytes.

Decoding order matters for the dead-letter reason an operator sees: size first (never parse
a huge payload), then UTF-8, then JSON, then the contract.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import ValidationError

from models.base import LabelScores, ModelInfo, SegmentScore, TextScore
from schemas.events import SCHEMA_VERSION, DeadLetterReason, EditorEvent
from stream.errors import DeadLetterTooLarge, DecodeError


def decode_event(raw: bytes | None, *, max_bytes: int, max_text_chars: int) -> EditorEvent:
    """Bytes -> a valid editor event, or `DecodeError` with the dead-letter reason."""
    if raw is None:
        raise DecodeError(DeadLetterReason.NOT_JSON, "empty message value (tombstone)")
    if len(raw) > max_bytes:
        raise DecodeError(
            DeadLetterReason.TOO_LARGE, f"{len(raw)} bytes exceeds the limit of {max_bytes}"
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(DeadLetterReason.NOT_UTF8, str(exc)) from exc
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(DeadLetterReason.NOT_JSON, str(exc)) from exc
    if not isinstance(payload, dict):
        raise DecodeError(
            DeadLetterReason.NOT_AN_OBJECT, f"expected a JSON object, got {type(payload).__name__}"
        )
    event_id = payload.get("event_id") if isinstance(payload.get("event_id"), str) else None
    version = payload.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise DecodeError(
            DeadLetterReason.UNKNOWN_SCHEMA_VERSION,
            f"schema_version {version!r} is not supported (this worker reads {SCHEMA_VERSION})",
            event_id,
        )
    try:
        event = EditorEvent.model_validate(payload)
    except ValidationError as exc:
        raise DecodeError(DeadLetterReason.INVALID_EVENT, _summarise(exc), event_id) from exc
    if not event.text.strip():
        raise DecodeError(DeadLetterReason.EMPTY_TEXT, "text is empty or whitespace", event_id)
    if len(event.text) > max_text_chars:
        raise DecodeError(
            DeadLetterReason.TEXT_TOO_LONG,
            f"text has {len(event.text)} characters, the limit is {max_text_chars}",
            event_id,
        )
    return event


def _summarise(exc: ValidationError) -> str:
    """One line naming each bad field, e.g. `revision: Input should be a valid integer`."""
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _labels(scores: LabelScores) -> dict[str, Any]:
    return {"label": scores.label, "probabilities": scores.probabilities}


def _sentiment(scores: LabelScores) -> dict[str, Any]:
    probs = scores.probabilities
    valence = probs.get("positive", 0.0) - probs.get("negative", 0.0)
    return {**_labels(scores), "valence": max(-1.0, min(1.0, valence))}


def _emotion(scores: LabelScores, intensity: float) -> dict[str, Any]:
    return {**_labels(scores), "intensity": min(1.0, max(0.0, intensity))}


def _segment(segment: SegmentScore) -> dict[str, Any]:
    return {
        "start": segment.start,
        "end": segment.end,
        "sentiment": _sentiment(segment.sentiment),
        "emotion": _emotion(segment.emotion, segment.emotion_intensity),
    }


def score_fields(score: TextScore, extras: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The model's part of the output contract: sentiment, emotion, sentences, and the
    optional `suggestions` / `attributions` the recommendation step produced. The worker and
    `valence score` both build their records with it."""
    fields: dict[str, Any] = {
        "sentiment": _sentiment(score.sentiment),
        "emotion": _emotion(score.emotion, score.emotion_intensity),
        "sentences": [_segment(segment) for segment in score.segments],
    }
    if extras:
        fields.update(extras)
    return fields


def model_fields(model: ModelInfo) -> dict[str, str]:
    """The output contract's `model` object."""
    return {"name": model.name, "version": model.version}


def scored_event(
    event: EditorEvent,
    score: TextScore,
    model: ModelInfo,
    timings: Mapping[str, Any],
    scored_at: datetime,
    extras: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The output contract (`schemas.ScoredEvent`) as a plain dict, built without pydantic
    because this runs once per event on the hot path; a test validates it against the schema.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": event.event_id,
        "doc_id": event.doc_id,
        "user_id": event.user_id,
        "revision": event.revision,
        "lang": event.lang,
        "target_emotion": event.target_emotion,
        "model": model_fields(model),
        **score_fields(score, extras),
        "timings": dict(timings),
        "scored_at": scored_at,
    }


def encode(payload: Mapping[str, Any]) -> bytes:
    """A dict -> JSON bytes (datetimes as RFC 3339, UTC)."""
    return orjson.dumps(payload, option=orjson.OPT_UTC_Z)


# A key longer than this is left out of the dead letter and its record (read it back from the
# source): keys are ids, and a huge one must not crowd out the original value.
MAX_DEAD_LETTER_KEY_BYTES = 1024
# The error detail is a human-readable line; parser messages can quote the input at length.
MAX_DEAD_LETTER_ERROR_CHARS = 2000
SHORT_ERROR_CHARS = 120


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record for the dead-letter topic, known to fit its size limit."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    truncated: bool


def record_size(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None
) -> int:
    """Bytes of a record alone in a batch, as the producer counts them against its request
    limit (the broker's per-topic `max.message.bytes` counts the same batch)."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers or []))


def dead_letter(
    raw: bytes | None,
    reason: DeadLetterReason,
    detail: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    event_id: str | None,
    keep_bytes: int | None = None,
    dead_lettered_at: datetime | None = None,
) -> dict[str, Any]:
    """The dead-letter contract (`schemas.DeadLetter`) as a dict.

    `keep_bytes` keeps only the first bytes of the original (its size and SHA-256 describe
    the whole); `dead_letter_record` picks it so the record fits its topic."""
    original = raw or b""
    kept = original if keep_bytes is None else original[: max(0, keep_bytes)]
    return {
        "schema_version": SCHEMA_VERSION,
        "reason": reason.value,
        "error": detail[:MAX_DEAD_LETTER_ERROR_CHARS],
        "event_id": _readable_id(event_id),
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp_ms": timestamp_ms,
            "key_b64": (
                base64.b64encode(key).decode("ascii")
                if key is not None and len(key) <= MAX_DEAD_LETTER_KEY_BYTES
                else None
            ),
        },
        "original_b64": base64.b64encode(kept).decode("ascii"),
        "original_bytes": len(original),
        "original_sha256": hashlib.sha256(original).hexdigest(),
        "original_truncated": len(kept) < len(original),
        "dead_lettered_at": dead_lettered_at or datetime.now(UTC),
    }


def _readable_id(event_id: str | None) -> str | None:
    """The event id when it is a valid id (1..256 characters), else None: a dead letter must
    not carry a huge or unencodable 'id' out of a rejected event."""
    if event_id is None or not 0 < len(event_id) <= 256:
        return None
    try:
        event_id.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return event_id


def dead_letter_record(
    raw: bytes | None,
    reason: DeadLetterReason,
    detail: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    key: bytes | None,
    event_id: str | None,
    max_bytes: int,
) -> DeadLetterRecord:
    """The dead letter of one input as a record no larger than `max_bytes` (the smaller of
    the producer's request limit and the dead-letter topic's `max.message.bytes`).

    The whole original goes in when it fits; otherwise the longest prefix that fits, with
    the whole original's size and SHA-256 and the source topic/partition/offset to read it
    back from. Raises `DeadLetterTooLarge` only when not even an empty original fits.
    """
    detail = detail[:MAX_DEAD_LETTER_ERROR_CHARS].encode("utf-8", "replace").decode("utf-8")
    record_key = key if key is not None and len(key) <= MAX_DEAD_LETTER_KEY_BYTES else None
    at = datetime.now(UTC)  # one timestamp: every size below is comparable
    # A small limit first gives up the error detail's tail, then the original's.
    for kept_detail in (detail, detail[:SHORT_ERROR_CHARS]):
        headers = dead_letter_headers(reason, kept_detail, topic, partition, offset)
        letter = functools.partial(
            dead_letter,
            raw,
            reason,
            kept_detail,
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp_ms=timestamp_ms,
            key=key,
            event_id=event_id,
            dead_lettered_at=at,
        )
        value = encode(letter())
        if record_size(record_key, value, headers) <= max_bytes:
            return DeadLetterRecord(record_key, value, headers, truncated=False)
        room = max_bytes - record_size(record_key, encode(letter(keep_bytes=0)), headers)
        # base64 turns every 3 bytes into 4 characters (plain ASCII in JSON: no escaping);
        # the record's length varints may grow by a few bytes with it: shrink until it fits.
        keep = (room // 4) * 3
        while keep >= 0:
            value = encode(letter(keep_bytes=keep))
            if record_size(record_key, value, headers) <= max_bytes:
                return DeadLetterRecord(record_key, value, headers, truncated=True)
            keep -= 3
    raise DeadLetterTooLarge(
        f"a dead letter of {topic}[{partition}]@{offset} does not fit {max_bytes} bytes "
        "even without its original"
    )


def dead_letter_headers(
    reason: DeadLetterReason, detail: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Kafka Connect style context headers, so generic DLQ tooling can read ours."""
    return [
        ("valence.error.reason", reason.value.encode()),
        ("valence.error.message", detail.encode("utf-8", "replace")[:1024]),
        ("valence.source.topic", topic.encode()),
        ("valence.source.partition", str(partition).encode()),
        ("valence.source.offset", str(offset).encode()),
    ]
