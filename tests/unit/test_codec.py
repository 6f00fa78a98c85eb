"""Bytes -> event: every kind of bad input gets its own dead-letter reason."""

from __future__ import annotations

import orjson
import pytest

from schemas.events import DeadLetterReason
from stream.codec import decode_event
from stream.errors import DecodeError

GOOD = {
    "event_id": "e-1",
    "doc_id": "d-1",
    "user_id": "u-1",
    "revision": 3,
    "text": "I love this.",
    "produced_at": "2026-11-26T09:00:00Z",
}


def decode(raw: bytes | None, max_bytes: int = 10_000, max_text_chars: int = 1_000):
    return decode_event(raw, max_bytes=max_bytes, max_text_chars=max_text_chars)


def test_good_event_decodes() -> None:
    event = decode(orjson.dumps({**GOOD, "target_emotion": "joy", "extra": 1}))
    assert (event.event_id, event.revision, event.target_emotion) == ("e-1", 3, "joy")
    assert event.produced_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, DeadLetterReason.NOT_JSON),
        (b"x" * 20_000, DeadLetterReason.TOO_LARGE),
        (b'{"text": "\xff"}', DeadLetterReason.NOT_UTF8),
        (b"{not json", DeadLetterReason.NOT_JSON),
        (b"[1, 2]", DeadLetterReason.NOT_AN_OBJECT),
        (orjson.dumps({**GOOD, "schema_version": 2}), DeadLetterReason.UNKNOWN_SCHEMA_VERSION),
        (orjson.dumps({**GOOD, "schema_version": True}), DeadLetterReason.UNKNOWN_SCHEMA_VERSION),
        (orjson.dumps({**GOOD, "revision": "3"}), DeadLetterReason.INVALID_EVENT),
        (orjson.dumps({**GOOD, "event_id": 5}), DeadLetterReason.INVALID_EVENT),
        (
            orjson.dumps({k: v for k, v in GOOD.items() if k != "doc_id"}),
            DeadLetterReason.INVALID_EVENT,
        ),
        (
            orjson.dumps({**GOOD, "produced_at": "2026-11-26T09:00:00"}),
            DeadLetterReason.INVALID_EVENT,
        ),
        (orjson.dumps({**GOOD, "target_emotion": "disgust"}), DeadLetterReason.INVALID_EVENT),
        (orjson.dumps({**GOOD, "text": "  \n\t "}), DeadLetterReason.EMPTY_TEXT),
        (orjson.dumps({**GOOD, "text": "a" * 1_001}), DeadLetterReason.TEXT_TOO_LONG),
    ],
)
def test_bad_input_gets_its_reason(raw: bytes | None, reason: DeadLetterReason) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(raw)
    assert caught.value.reason is reason
    assert caught.value.detail


def test_invalid_event_names_the_field_and_keeps_the_id() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(orjson.dumps({**GOOD, "revision": "3"}))
    assert "revision" in caught.value.detail
    assert caught.value.event_id == "e-1"
