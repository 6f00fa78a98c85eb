"""The pipeline's delivery rules, with a fake model and a fake broker (no Kafka here).

An input is acknowledged only after its output record is delivered; a failed delivery
acknowledges nothing; a poison event is dead-lettered alone; a broken model stops the
worker without acknowledging.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from prometheus_client import CollectorRegistry

from models.base import LabelScores, ModelInfo, Scorer, TextScore
from schemas.export import schema_path
from stream.codec import record_size
from stream.config import Settings
from stream.errors import DeliveryFailed, ModelError
from stream.metrics import ValenceMetrics
from stream.pipeline import RecordLimits, ScoringPipeline, Source
from stream.scoring import BatchScorer


class FakeScorer(Scorer):
    info = ModelInfo("fake", "0", "none", "cpu", "fp32")

    def __init__(self, poison: str = "POISON", broken: bool = False) -> None:
        self.calls: list[int] = []
        self.poison, self.broken = poison, broken

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        self.calls.append(len(texts))
        if self.broken or any(self.poison in text for text in texts):
            raise RuntimeError("model exploded")
        sentiment = LabelScores("positive", {"negative": 0.1, "neutral": 0.1, "positive": 0.8})
        emotion = LabelScores(
            "joy", {"joy": 0.6, "surprise": 0.1, "anger": 0.1, "fear": 0.1, "sadness": 0.1}
        )
        return [TextScore(sentiment, 0.7, emotion, 0.5, [], 3) for _ in texts]


class FakeSink:
    """A broker stand-in: records what is sent. `fail` fails every delivery, `hold` leaves
    deliveries pending until `release()`, `refuse_topic` raises in `send` itself (as the
    producer does for a record over its limit or an unknown topic)."""

    def __init__(self, fail: bool = False, hold: bool = False, refuse_topic: str = "") -> None:
        self.records: list[tuple[str, bytes | None, bytes]] = []
        self.sizes: list[int] = []  # as the producer counts them, headers included
        self.fail, self.hold, self.refuse_topic = fail, hold, refuse_topic
        self.futures: list[asyncio.Future[None]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Any = None):
        if topic == self.refuse_topic:
            raise RuntimeError(f"topic {topic} refused")
        self.records.append((topic, key, value))
        self.sizes.append(record_size(key, value, headers))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            future.set_exception(ConnectionError("broker gone"))
        elif not self.hold:
            future.set_result(None)
        self.futures.append(future)
        return future

    def release(self) -> None:
        for future in self.futures:
            if not future.done():
                future.set_result(None)

    def values(self, topic: str) -> list[dict[str, Any]]:
        return [orjson.loads(value) for sent, _, value in self.records if sent == topic]


def event(i: int, text: str = "I am happy") -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "doc_id": f"d{i % 3}",
            "user_id": "u",
            "revision": i,
            "text": text,
            "produced_at": "2026-11-26T09:00:00+00:00",
        }
    )


async def run(raws: list[bytes], scorer: FakeScorer, sink: FakeSink) -> tuple[list[int], list]:
    acked: list[int] = []
    fatal: list[BaseException] = []

    async def on_fatal(exc: BaseException) -> None:
        fatal.append(exc)

    settings = Settings(batch_max_events=4, batch_max_wait_s=0.01, max_in_flight_events=8)
    metrics = ValenceMetrics.create(CollectorRegistry())
    pipeline = ScoringPipeline(settings, BatchScorer(scorer), sink, metrics, on_fatal)
    runner = asyncio.ensure_future(pipeline.run())
    for offset, raw in enumerate(raws):

        async def ack(offset: int = offset) -> None:
            acked.append(offset)

        await pipeline.submit(raw, Source("in", 0, offset, None, b"k", ack))
    await pipeline.close()
    try:
        await asyncio.wait_for(runner, 10)
    except ModelError as exc:
        fatal.append(exc)
    return acked, fatal


def test_every_input_is_scored_and_acknowledged_after_delivery() -> None:
    sink = FakeSink()
    acked, fatal = asyncio.run(run([event(i) for i in range(10)], FakeScorer(), sink))
    assert sorted(acked) == list(range(10)) and not fatal
    outputs = [
        orjson.loads(value) for topic, _, value in sink.records if topic == "valence.scored-events"
    ]
    assert [o["event_id"] for o in outputs] == [f"e{i}" for i in range(10)]
    assert all(key == f"d{i % 3}".encode() for i, (_, key, _) in enumerate(sink.records))
    assert max(o["timings"]["batch_events"] for o in outputs) <= 4


def test_failed_delivery_acknowledges_nothing_and_is_fatal() -> None:
    acked, fatal = asyncio.run(run([event(i) for i in range(5)], FakeScorer(), FakeSink(fail=True)))
    assert acked == []
    assert fatal and isinstance(fatal[0], DeliveryFailed)
    assert isinstance(fatal[0].__cause__, ConnectionError)
    assert "valence.scored-events" in str(fatal[0])


def test_poison_event_is_dead_lettered_alone() -> None:
    sink = FakeSink()
    raws = [event(0), event(1, "POISON pill"), event(2), b"not json"]
    acked, fatal = asyncio.run(run(raws, FakeScorer(), sink))
    assert sorted(acked) == [0, 1, 2, 3] and not fatal
    letters = {
        orjson.loads(value)["source"]["offset"]: orjson.loads(value)["reason"]
        for topic, _, value in sink.records
        if topic == "valence.dead-letter"
    }
    assert letters == {1: "scoring_failed", 3: "not_json"}


def test_broken_model_stops_without_acknowledging() -> None:
    acked, fatal = asyncio.run(
        run([event(i) for i in range(6)], FakeScorer(broken=True), FakeSink())
    )
    assert acked == []
    assert any(isinstance(exc, ModelError) for exc in fatal)


@pytest.mark.parametrize("count", [1, 9])
def test_in_flight_gauge_returns_to_zero(count: int) -> None:
    async def scenario() -> float:
        settings = Settings(batch_max_events=4, batch_max_wait_s=0.0)
        metrics = ValenceMetrics.create(CollectorRegistry())

        async def on_fatal(exc: BaseException) -> None:
            raise AssertionError(exc)

        pipeline = ScoringPipeline(
            settings, BatchScorer(FakeScorer()), FakeSink(), metrics, on_fatal
        )
        runner = asyncio.ensure_future(pipeline.run())

        async def ack() -> None:
            return None

        for offset in range(count):
            await pipeline.submit(event(offset), Source("in", 0, offset, None, None, ack))
        await pipeline.close()
        await runner
        return metrics.registry.get_sample_value("valence_events_in_flight") or 0.0

    assert asyncio.run(scenario()) == 0.0


class GatedScorer(FakeScorer):
    """Holds its first call until the test opens the gate: the model is busy meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.batches: list[list[str]] = []

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            self.gate.wait(10)
        return super().score(texts)


class HeldSink(FakeSink):
    """Delivers every record at once except those whose key is held, until released."""

    def __init__(self, held_key: bytes) -> None:
        super().__init__()
        self.held_key = held_key
        self.held: list[asyncio.Future[None]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes, headers: Any = None):
        self.records.append((topic, key, value))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if key == self.held_key:
            self.held.append(future)
        else:
            future.set_result(None)
        return future


def doc_event(event_id: str, doc_id: str, text: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "doc_id": doc_id,
            "user_id": "u",
            "revision": 0,
            "text": text,
            "produced_at": "2026-11-26T09:00:00+00:00",
        }
    )


def test_short_event_overtakes_another_documents_long_one_but_not_its_own() -> None:
    long_text = "The committee reviewed every proposal in detail. " * 40  # ~560 tokens

    async def scenario() -> tuple[list[str], list[int], list[int], GatedScorer]:
        scorer = GatedScorer()
        sink = HeldSink(held_key=b"a")
        acked: list[int] = []
        settings = Settings(batch_max_tokens=256, batch_max_wait_s=0.0, batch_order="shortest")

        async def on_fatal(exc: BaseException) -> None:
            raise AssertionError(exc)

        metrics = ValenceMetrics.create(CollectorRegistry())
        pipeline = ScoringPipeline(settings, BatchScorer(scorer), sink, metrics, on_fatal)
        runner = asyncio.ensure_future(pipeline.run())
        raws = [
            doc_event("first", "z", "Hello there."),  # occupies the model
            doc_event("long-a", "a", long_text),
            doc_event("short-a", "a", "Fine."),
            doc_event("short-b", "b", "Great news!"),
        ]
        for offset, raw in enumerate(raws):

            async def ack(offset: int = offset) -> None:
                acked.append(offset)

            await pipeline.submit(raw, Source("in", 0, offset, None, None, ack))
            await asyncio.sleep(0.05)  # the first batch is taken before the rest arrive
        scorer.gate.set()
        while len(sink.records) < 4:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        acked_before_release = list(acked)
        for future in sink.held:
            future.set_result(None)
        await pipeline.close()
        await asyncio.wait_for(runner, 10)
        published = [orjson.loads(value)["event_id"] for _, _, value in sink.records]
        return published, acked_before_release, acked, scorer

    published, acked_early, acked, scorer = asyncio.run(scenario())
    # Another document's sentence overtakes the long document...
    assert published.index("short-b") < published.index("long-a")
    # ...but a document's own events keep their order.
    assert published.index("long-a") < published.index("short-a")
    assert scorer.batches[1] == ["Great news!"]
    # short-b (offset 3) was delivered while long-a (offset 1) was not: faust saw only the
    # acks below the first undelivered offset, and then all of them in offset order.
    assert acked_early == [0]
    assert acked == [0, 1, 2, 3]


def test_a_typed_sentence_is_scored_beside_a_held_call_and_documents_keep_order() -> None:
    """The express lane: while the main lane's call is held, another document's sentence is
    scored and published; the held document's next event waits for it; acks stay in
    offset order."""

    async def scenario() -> tuple[list[str], list[int], list[int], GatedScorer, list[str]]:
        scorer = GatedScorer()
        sink = FakeSink()
        acked: list[int] = []
        settings = Settings(batch_max_wait_s=0.0, batch_express_tokens=64)

        async def on_fatal(exc: BaseException) -> None:
            raise AssertionError(exc)

        metrics = ValenceMetrics.create(CollectorRegistry())
        pipeline = ScoringPipeline(settings, BatchScorer(scorer), sink, metrics, on_fatal)
        runner = asyncio.ensure_future(pipeline.run())
        raws = [
            doc_event("held", "z", "The main lane holds this one."),  # call 1, held
            doc_event("typed", "b", "Great news!"),  # express, beside it
            doc_event("same-doc", "z", "Fine."),  # waits for its document's call
        ]
        for offset, raw in enumerate(raws):

            async def ack(offset: int = offset) -> None:
                acked.append(offset)

            await pipeline.submit(raw, Source("in", 0, offset, None, None, ack))
            await asyncio.sleep(0.05)
        while not sink.records:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        published_while_held = [orjson.loads(v)["event_id"] for _, _, v in sink.records]
        acked_while_held = list(acked)
        scorer.gate.set()
        await pipeline.close()
        await asyncio.wait_for(runner, 10)
        published = [orjson.loads(value)["event_id"] for _, _, value in sink.records]
        return published_while_held, acked_while_held, acked, scorer, published

    held, acked_early, acked, scorer, published = asyncio.run(scenario())
    assert held == ["typed"]  # out while the main lane's call was still running
    assert scorer.batches[1] == ["Great news!"]
    assert published.index("held") < published.index("same-doc")  # one document, in order
    assert acked_early == []  # offset 1 is delivered, but offset 0 is not: faust sees nothing
    assert acked == [0, 1, 2]


def test_arrival_order_publishes_first_in_first_out() -> None:
    long_text = "The committee reviewed every proposal in detail. " * 40

    async def scenario() -> list[str]:
        scorer = GatedScorer()
        sink = FakeSink()
        settings = Settings(batch_max_tokens=256, batch_max_wait_s=0.0, batch_order="arrival")

        async def on_fatal(exc: BaseException) -> None:
            raise AssertionError(exc)

        metrics = ValenceMetrics.create(CollectorRegistry())
        pipeline = ScoringPipeline(settings, BatchScorer(scorer), sink, metrics, on_fatal)
        runner = asyncio.ensure_future(pipeline.run())

        async def ack() -> None:
            return None

        raws = [
            doc_event("first", "z", "Hello there."),
            doc_event("long-a", "a", long_text),
            doc_event("short-b", "b", "Great news!"),
        ]
        for offset, raw in enumerate(raws):
            await pipeline.submit(raw, Source("in", 0, offset, None, None, ack))
            await asyncio.sleep(0.05)
        scorer.gate.set()
        await pipeline.close()
        await asyncio.wait_for(runner, 10)
        return [orjson.loads(value)["event_id"] for _, _, value in sink.records]

    assert asyncio.run(scenario()) == ["first", "long-a", "short-b"]


class SteppedScorer(Scorer):
    """A real (tiny) scorer whose first two calls wait for the test: the model is busy."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner
        self.info = inner.info
        self.gates = [threading.Event(), threading.Event()]
        self.calls: list[list[str]] = []

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def split(self, text: str, max_chars: int) -> list[tuple[int, int]]:
        return self.inner.split(text, max_chars)

    def combine(self, text: str, parts: Sequence[tuple[int, TextScore]]) -> TextScore:
        return self.inner.combine(text, parts)

    def score(self, texts: Sequence[str]) -> list[TextScore]:
        self.calls.append(list(texts))
        if len(self.calls) <= len(self.gates):
            self.gates[len(self.calls) - 1].wait(10)
        return self.inner.score(texts)


def test_a_long_document_is_scored_in_pieces_with_short_events_between(tmp_path: Path) -> None:
    from models.loading import load_scorer
    from tests.tiny_model import write_random_model

    inner = load_scorer(write_random_model(tmp_path / "m"), device="cpu", precision="fp32")
    sentence = "The committee reviewed every proposal in detail, one by one."
    long_text = " ".join([sentence] * 24)  # ~400 tokens: pieces of ~64 tokens

    async def scenario() -> tuple[list[dict[str, Any]], list[int], SteppedScorer]:
        scorer = SteppedScorer(inner)
        sink = FakeSink()
        acked: list[int] = []
        # One lane: the test steps the main lane's calls (the express lane has its own test).
        settings = Settings(
            batch_split_tokens=64,
            batch_max_wait_s=0.0,
            suggestions="off",
            batch_express_tokens=0,
        )

        async def on_fatal(exc: BaseException) -> None:
            raise AssertionError(exc)

        metrics = ValenceMetrics.create(CollectorRegistry())
        pipeline = ScoringPipeline(settings, BatchScorer(scorer), sink, metrics, on_fatal)
        runner = asyncio.ensure_future(pipeline.run())

        async def submit(offset: int, raw: bytes) -> None:
            async def ack() -> None:
                acked.append(offset)

            await pipeline.submit(raw, Source("in", 0, offset, None, None, ack))
            await asyncio.sleep(0.05)

        await submit(0, doc_event("first", "z", "Hello there."))  # call 1, held
        await submit(1, doc_event("long-a", "a", long_text))
        await submit(2, doc_event("short-a", "a", "Fine."))
        await submit(3, doc_event("short-b", "b", "Great news!"))
        scorer.gates[0].set()  # call 2 takes short-b and the first piece, and is held
        await asyncio.sleep(0.2)
        await submit(4, doc_event("late-c", "c", "Typed just now."))
        scorer.gates[1].set()
        await pipeline.close()
        await asyncio.wait_for(runner, 30)
        outputs = [orjson.loads(value) for _, _, value in sink.records]
        return outputs, acked, scorer

    outputs, acked, scorer = asyncio.run(scenario())
    published = [o["event_id"] for o in outputs]
    assert published.index("short-b") < published.index("long-a")
    assert published.index("late-c") < published.index("long-a")  # admitted between pieces
    assert published.index("long-a") < published.index("short-a")  # its own doc waits
    assert acked == [0, 1, 2, 3, 4]
    in_long = [[text in long_text and len(text) > 100 for text in call] for call in scorer.calls]
    pieces = sum(sum(flags) for flags in in_long)
    assert pieces >= 3
    assert all(len(flags) == 1 for flags in in_long if any(flags))  # a piece calls alone
    assert scorer.calls[1] == ["Great news!"]
    assert scorer.calls[2] == ["Typed just now."]  # came while piece 1 waited: goes first
    assert any(in_long[3])
    # The document's published score is the score of the whole text in one call.
    whole = inner.score([long_text])[0]
    long_out = outputs[published.index("long-a")]
    assert long_out["sentiment"]["label"] == whole.sentiment.label
    for label, probability in whole.sentiment.probabilities.items():
        assert abs(long_out["sentiment"]["probabilities"][label] - probability) < 1e-4
    assert len(long_out["sentences"]) == len(whole.segments)


# --- delivery (issue 11) ---------------------------------------------------------------

SCHEMA = json.loads(schema_path("dead_letter").read_text())


async def _release_until(sink: FakeSink, task: asyncio.Future[None]) -> None:
    while not task.done():
        sink.release()
        await asyncio.sleep(0.01)


def _pipeline(
    sink: FakeSink, fatal: list[BaseException], limits: RecordLimits | None = None, **overrides: Any
) -> ScoringPipeline:
    settings = Settings(
        **{"batch_max_events": 4, "batch_max_wait_s": 0.0, "max_in_flight_events": 8, **overrides}
    )

    async def on_fatal(exc: BaseException) -> None:
        fatal.append(exc)

    metrics = ValenceMetrics.create(CollectorRegistry())
    return ScoringPipeline(settings, BatchScorer(FakeScorer()), sink, metrics, on_fatal, limits)


def test_output_over_the_topic_limit_is_dead_lettered() -> None:
    async def scenario() -> FakeSink:
        sink, fatal = FakeSink(), []
        pipeline = _pipeline(sink, fatal, RecordLimits(output_max_bytes=600))
        runner = asyncio.ensure_future(pipeline.run())

        async def ack() -> None:
            return None

        await pipeline.submit(event(0), Source("in", 0, 0, None, None, ack))
        await pipeline.close()
        await asyncio.wait_for(runner, 5)
        assert not fatal
        return sink

    sink = asyncio.run(scenario())
    assert sink.values("valence.scored-events") == []
    (letter,) = sink.values("valence.dead-letter")
    assert letter["reason"] == "output_too_large" and letter["event_id"] == "e0"
    jsonschema.validate(letter, SCHEMA)


def test_oversized_event_dead_letter_fits_the_limit() -> None:
    """The issue's poison pill: a ~900 KB event is text_too_long; its dead letter keeps a
    prefix of the original, its size and SHA-256, and stays under the topic's limit."""
    limit = 1_048_588
    text = "x" * 900_000
    raw = event(0, text)

    async def scenario() -> tuple[list[int], FakeSink, list[BaseException]]:
        sink, fatal, acked = FakeSink(), [], []
        pipeline = _pipeline(sink, fatal, RecordLimits(limit, limit))
        runner = asyncio.ensure_future(pipeline.run())

        async def ack() -> None:
            acked.append(0)

        await pipeline.submit(raw, Source("in", 2, 2266, None, b"doc", ack))
        await pipeline.close()
        await asyncio.wait_for(runner, 5)
        return acked, sink, fatal

    acked, sink, fatal = asyncio.run(scenario())
    assert acked == [0] and not fatal
    ((topic, _, value),) = sink.records
    assert topic == "valence.dead-letter"
    assert limit - 200 < sink.sizes[0] <= limit
    letter = orjson.loads(value)
    jsonschema.validate(letter, SCHEMA)
    assert letter["reason"] == "text_too_long"
    assert letter["original_truncated"] is True
    assert letter["original_bytes"] == len(raw)
    assert letter["original_sha256"] == hashlib.sha256(raw).hexdigest()
    kept = base64.b64decode(letter["original_b64"])
    assert raw.startswith(kept) and len(kept) > limit // 2
    assert letter["source"] == {
        "topic": "in",
        "partition": 2,
        "offset": 2266,
        "timestamp_ms": None,
        "key_b64": base64.b64encode(b"doc").decode(),
    }


def test_pending_delivery_holds_acks_and_backpressures_intake() -> None:
    """Nothing is acknowledged while its record is still on its way; beyond
    max_in_flight_events, intake waits until deliveries complete."""

    async def scenario() -> None:
        sink, fatal, acked = FakeSink(hold=True), [], []
        pipeline = _pipeline(sink, fatal)
        runner = asyncio.ensure_future(pipeline.run())

        async def submit(offset: int) -> None:
            async def ack() -> None:
                acked.append(offset)

            await pipeline.submit(event(offset), Source("in", 0, offset, None, b"k", ack))

        for offset in range(8):
            await submit(offset)
        ninth = asyncio.ensure_future(submit(8))
        await asyncio.sleep(0.3)
        assert len(sink.records) == 8, "all eight were scored and sent"
        assert acked == [], "no record delivered yet, so nothing acknowledged"
        assert not ninth.done(), "the ninth event waits: eight are in flight"
        assert pipeline.in_flight == 9 - 1 + 1  # eight in the pipeline, the ninth counted
        sink.release()
        await asyncio.wait_for(ninth, 5)
        await pipeline.close()
        sink_release_task = asyncio.ensure_future(_release_until(sink, runner))
        await asyncio.wait_for(runner, 5)
        await sink_release_task
        assert sorted(acked) == list(range(9)) and not fatal
        assert pipeline.in_flight == 0

    asyncio.run(scenario())


def test_undeliverable_dead_letter_stops_with_the_reason() -> None:
    """The dead-letter topic refuses: the event is not acknowledged, and the error names the
    event and the topic (the worker then stops with it)."""

    async def scenario() -> tuple[list[int], BaseException]:
        sink, fatal, acked = FakeSink(refuse_topic="valence.dead-letter"), [], []
        pipeline = _pipeline(sink, fatal)
        runner = asyncio.ensure_future(pipeline.run())

        async def ack() -> None:
            acked.append(5)

        with pytest.raises(DeliveryFailed) as caught:
            await pipeline.submit(b"not json", Source("in", 1, 5, None, None, ack))
        await pipeline.close()
        await asyncio.wait_for(runner, 5)
        return acked, caught.value

    acked, error = asyncio.run(scenario())
    assert acked == []
    assert "in[1]@5" in str(error) and "valence.dead-letter" in str(error)
    assert "not_json" in str(error)
