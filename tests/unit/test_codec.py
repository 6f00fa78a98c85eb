"""Bytes -> event: every kind of bad input gets its own dead-letter reason."""

from __future__ import annotations

import base64
import hashlib

import orjson
import pytest

from schemas.events import DeadLetterReason
from stream.codec import dead_letter_record, decode_event, record_size
from stream.errors import DeadLetterTooLarge, DecodeError

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


@pytest.mark.parametrize("size", [0, 1, 100, 5_000, 60_000, 400_000])
@pytest.mark.parametrize("limit", [2_000, 16_384, 1_048_588])
def test_dead_letter_record_fits_and_keeps_what_it_can(size: int, limit: int) -> None:
    raw = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    record = dead_letter_record(
        raw,
        DeadLetterReason.TOO_LARGE,
        "é" * 5_000,  # a long, non-ASCII detail is cut, never grows the record past the limit
        topic="in",
        partition=0,
        offset=9,
        timestamp_ms=None,
        key=b"k" * 2_000,  # over the key limit: left out of the record and the letter
        event_id="\x00" * 300,  # not a valid id: left out
        max_bytes=limit,
    )
    assert record_size(record.key, record.value, record.headers) <= limit
    letter = orjson.loads(record.value)
    kept = base64.b64decode(letter["original_b64"])
    assert raw.startswith(kept)
    assert letter["original_truncated"] is (len(kept) < len(raw)) is record.truncated
    assert (letter["original_bytes"], letter["original_sha256"]) == (
        len(raw),
        hashlib.sha256(raw).hexdigest(),
    )
    assert record.key is None and letter["source"]["key_b64"] is None
    assert letter["event_id"] is None
    if size < limit // 2:
        assert kept == raw, "an original that fits goes in whole"


def test_dead_letter_that_cannot_fit_at_all_is_an_error() -> None:
    with pytest.raises(DeadLetterTooLarge):
        dead_letter_record(
            b"x",
            DeadLetterReason.NOT_JSON,
            "bad",
            topic="in",
            partition=0,
            offset=0,
            timestamp_ms=None,
            key=None,
            event_id=None,
            max_bytes=300,
        )


@pytest.mark.parametrize("limit", [1_048_588, 1_048_576, *range(16_384, 16_392), 2_097_200])
def test_dead_letter_record_fits_across_varint_boundaries(limit: int) -> None:
    """Record length varints grow at 2**7, 2**14, 2**21 bytes: a prefix sized from an empty
    letter must still fit after it (a 1-byte overshoot once stopped the worker)."""
    raw = b"a" * 2_000_000
    for key in (None, b"doc-big"):
        record = dead_letter_record(
            raw,
            DeadLetterReason.TEXT_TOO_LONG,
            "text has too many characters",
            topic="in",
            partition=1,
            offset=20,
            timestamp_ms=1,
            key=key,
            event_id="big-1",
            max_bytes=limit,
        )
        assert limit - 8 <= record_size(record.key, record.value, record.headers) <= limit
