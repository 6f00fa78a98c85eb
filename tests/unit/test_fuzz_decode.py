"""Property-based tests of the whole decode path, through the pipeline (fake model and
broker, as in test_pipeline.py): whatever bytes arrive -- arbitrary bytes, arbitrary JSON,
hostile Unicode (surrogates, control characters, right-to-left text, emoji), sizes from 0
to past the limits -- each input becomes exactly one scored event or one dead letter that
fits its topic's limit and satisfies its schema, is acknowledged, and nothing raises."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.export import schema_path
from stream.config import Settings
from stream.pipeline import RecordLimits, ScoringPipeline, Source
from stream.scoring import BatchScorer
from tests.unit.test_pipeline import FakeScorer, FakeSink

MAX_EVENT_BYTES = 4096
MAX_TEXT_CHARS = 1000
SCORED = json.loads(schema_path("scored_event").read_text())
DEAD_LETTER = json.loads(schema_path("dead_letter").read_text())
FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def through_pipeline(raw: bytes | None, dead_letter_max_bytes: int) -> None:
    """Submit one raw value and check what came out; raises AssertionError otherwise."""
    sink, fatal, acked = FakeSink(), [], []
    limits = RecordLimits(output_max_bytes=1_048_576, dead_letter_max_bytes=dead_letter_max_bytes)

    async def scenario() -> None:
        config = Settings(
            batch_max_events=4,
            batch_max_wait_s=0.0,
            max_event_bytes=MAX_EVENT_BYTES,
            max_text_chars=MAX_TEXT_CHARS,
        )

        async def on_fatal(exc: BaseException) -> None:
            fatal.append(exc)

        from prometheus_client import CollectorRegistry

        from stream.metrics import ValenceMetrics

        metrics = ValenceMetrics.create(CollectorRegistry())
        pipeline = ScoringPipeline(
            config, BatchScorer(FakeScorer()), sink, metrics, on_fatal, limits
        )
        runner = asyncio.ensure_future(pipeline.run())

        async def ack() -> None:
            acked.append(1)

        await pipeline.submit(raw, Source("in", 3, 42, 1_700_000_000_000, b"key", ack))
        await pipeline.close()
        await asyncio.wait_for(runner, 10)

    asyncio.run(scenario())
    assert not fatal, fatal
    assert acked == [1], "the input is acknowledged once"
    ((topic, _, value),) = sink.records
    payload: dict[str, Any] = json.loads(value)
    if topic == "valence.scored-events":
        jsonschema.validate(payload, SCORED)
        return
    assert topic == "valence.dead-letter"
    jsonschema.validate(payload, DEAD_LETTER)
    assert sink.sizes[0] <= dead_letter_max_bytes
    original = raw or b""
    assert payload["original_sha256"] == hashlib.sha256(original).hexdigest()
    assert payload["original_bytes"] == len(original)
    kept = base64.b64decode(payload["original_b64"])
    assert original.startswith(kept) and payload["original_truncated"] == (kept != original)
    assert payload["source"]["offset"] == 42 and payload["source"]["partition"] == 3


# Every code point, lone surrogates included; plus the hostile ones on purpose.
ANY_CHAR = st.characters(codec=None, categories=None)
HOSTILE_PIECES = st.sampled_from(
    ["\u202e", "\u200f", "\u0000", "\u0007", "\u001b", "\ufeff", "\ud800", "\udfff", "😀",
     "👍🏽", "مرحبا", "\u0301", "\r\n", "\u2028", '"', "\\"]
)  # fmt: skip
TEXT = st.lists(st.one_of(ANY_CHAR, HOSTILE_PIECES), max_size=MAX_TEXT_CHARS + 20).map("".join)
JSON_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
LIMITS = st.integers(min_value=2048, max_value=20_000)


def to_bytes(value: Any, ascii_only: bool) -> bytes:
    """JSON text as a hostile writer may produce it: surrogates escaped (`\\ud800`) or
    written raw (invalid UTF-8), NaN and huge integers as Python's json writes them."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@FUZZ
@given(raw=st.one_of(st.none(), st.binary(max_size=600)), limit=LIMITS)
def test_arbitrary_bytes(raw: bytes | None, limit: int) -> None:
    through_pipeline(raw, limit)


@FUZZ
@given(
    size=st.one_of(
        st.integers(0, 64),
        st.integers(MAX_EVENT_BYTES - 64, MAX_EVENT_BYTES + 64),
        st.integers(0, 30_000),
    ),
    fill=st.sampled_from([b"x", b"{", b"\xff", b" ", b"\xf0\x9f\x98\x80"]),
    limit=LIMITS,
)  # fmt: skip
def test_sizes_around_the_limits(size: int, fill: bytes, limit: int) -> None:
    through_pipeline((fill * size)[:size], limit)


@FUZZ
@given(value=JSON_VALUE, ascii_only=st.booleans(), limit=LIMITS)
def test_arbitrary_json(value: Any, ascii_only: bool, limit: int) -> None:
    through_pipeline(to_bytes(value, ascii_only), limit)


EVENT_FIELDS = {
    "event_id": st.text(min_size=0, max_size=300),
    "doc_id": st.text(min_size=1, max_size=20),
    "user_id": st.just("u"),
    "revision": st.one_of(st.integers(-5, 2**63), st.text(max_size=3)),
    "text": TEXT,
    "produced_at": st.sampled_from(
        ["2026-11-26T09:00:00Z", "2026-11-26T09:00:00", "yesterday", "2026-11-26T09:00:00+14:00"]
    ),
    "lang": st.one_of(st.none(), st.text(max_size=40)),
    "target_emotion": st.sampled_from([None, "joy", "fear", "disgust", ""]),
    "schema_version": st.sampled_from([1, 1, 1, 2, "1", True, None]),
}


@FUZZ
@given(
    event=st.fixed_dictionaries({}, optional=EVENT_FIELDS),
    ascii_only=st.booleans(),
    limit=LIMITS,
)
def test_event_shaped_json_with_hostile_unicode(
    event: dict[str, Any], ascii_only: bool, limit: int
) -> None:
    through_pipeline(to_bytes(event, ascii_only), limit)


@FUZZ
@given(text=TEXT.filter(lambda t: t.strip()), ascii_only=st.booleans())
def test_a_valid_event_with_any_text_is_scored_or_dead_lettered(
    text: str, ascii_only: bool
) -> None:
    event = {
        "event_id": "e-1",
        "doc_id": "d",
        "user_id": "u",
        "revision": 1,
        "text": text,
        "produced_at": "2026-11-26T09:00:00Z",
    }
    through_pipeline(to_bytes(event, ascii_only), 4096)
