"""Suggestions in the stream: computed in the scoring job, carried by the output event, valid
against the contract, and never able to cost an event its score."""

from __future__ import annotations

import asyncio
import threading

import orjson
from prometheus_client import CollectorRegistry

from models.recommend.attribution import Attribution, SpanScore
from models.recommend.ranking import Analysis, Suggestion
from models.recommend.service import StreamStep
from schemas.events import ScoredEvent
from stream.config import Settings
from stream.factory import recommendation_step
from stream.metrics import ValenceMetrics
from stream.pipeline import ScoringPipeline, Source
from stream.scoring import BatchScorer
from tests.unit.test_pipeline import FakeScorer, FakeSink


class FakeRecommender:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str | None], bool, str]] = []

    def analyse(self, texts, scores, targets, *, attribution):
        self.calls.append((list(targets), attribution, threading.current_thread().name))
        out = []
        for text, target in zip(texts, targets, strict=True):
            analysis = Analysis()
            end = text.index(" ")
            if target is not None:
                analysis.suggestions = [
                    Suggestion(
                        0,
                        end,
                        text[:end],
                        "Glad",
                        target,
                        "word",
                        0.2,
                        0.7,
                        0.93,
                        0.5,
                        ("glove", "lexicon"),
                        0.3,
                    )
                ]
            if attribution:
                analysis.attributions = [
                    Attribution("emotion", "joy", 0.6, [SpanScore(0, end, text[:end], 0.1)])
                ]
            out.append(analysis)
        return out


def test_modes_choose_which_events_get_suggestions() -> None:
    requested = StreamStep(FakeRecommender(), mode="requested")  # type: ignore[arg-type]
    everyone = StreamStep(FakeRecommender(), mode="all", default_target="fear")  # type: ignore[arg-type]
    off = StreamStep(FakeRecommender(), mode="off", attribution=True)  # type: ignore[arg-type]
    targets = ["joy", None]
    assert requested.targets(targets) == ["joy", None]
    assert everyone.targets(targets) == ["joy", "fear"]
    assert off.targets(targets) == [None, None]
    extras = off(["a b", "c d"], [], targets)
    assert all("attributions" in e and "suggestions" not in e for e in extras)
    extras = requested(["a b", "c d"], [], targets)
    assert "suggestions" in extras[0] and extras[1] == {}


def test_no_step_is_built_when_both_features_are_off() -> None:
    settings = Settings(suggestions="off", attribution=False)
    assert recommendation_step(settings, FakeScorer()) is None


def event(i: int, target: str | None) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{i}",
            "doc_id": "d",
            "user_id": "u",
            "revision": i,
            "text": f"Sad news number {i}",
            "produced_at": "2026-11-26T09:00:00+00:00",
            "target_emotion": target,
        }
    )


async def run(step, raws: list[bytes]) -> list[dict]:
    settings = Settings(batch_max_events=8, batch_max_wait_s=0.01)
    sink = FakeSink()

    async def on_fatal(exc: BaseException) -> None:
        raise AssertionError(exc)

    pipeline = ScoringPipeline(
        settings,
        BatchScorer(FakeScorer(), step=step),
        sink,
        ValenceMetrics.create(CollectorRegistry()),
        on_fatal,
    )
    runner = asyncio.ensure_future(pipeline.run())

    async def ack() -> None:
        return None

    for offset, raw in enumerate(raws):
        await pipeline.submit(raw, Source("in", 0, offset, None, None, ack))
    await pipeline.close()
    await asyncio.wait_for(runner, 10)
    topic = settings.output_topic
    return [orjson.loads(value) for name, _, value in sink.records if name == topic]


def test_output_events_carry_valid_suggestions_computed_on_the_model_thread() -> None:
    recommender = FakeRecommender()
    step = StreamStep(recommender, mode="requested", attribution=True)  # type: ignore[arg-type]
    outputs = asyncio.run(run(step, [event(0, "joy"), event(1, None), event(2, "fear")]))
    assert [o.get("suggestions") is not None for o in outputs] == [True, False, True]
    first = outputs[0]["suggestions"][0]
    assert (first["original"], first["replacement"], first["target"]) == ("Sad", "Glad", "joy")
    assert all("attributions" in o for o in outputs)
    for output in outputs:
        ScoredEvent.model_validate(output)  # the contract accepts the new fields
    assert all(name.startswith("valence-model") for _, _, name in recommender.calls)


def test_a_failing_step_costs_the_suggestions_not_the_scores() -> None:
    def broken(texts, scores, targets):
        raise RuntimeError("no wordnet")

    outputs = asyncio.run(run(broken, [event(0, "joy"), event(1, "joy")]))
    assert [o["event_id"] for o in outputs] == ["e0", "e1"]
    assert all("suggestions" not in o for o in outputs)


def test_suggestion_duration_is_observed_only_for_batches_that_asked_for_suggestions() -> None:
    metrics = ValenceMetrics.create(CollectorRegistry())
    step = StreamStep(FakeRecommender(), mode="requested")  # type: ignore[arg-type]
    scorer = BatchScorer(FakeScorer(), step=step, step_duration=metrics.suggestion_duration)

    def observed() -> float:
        value = metrics.registry.get_sample_value("valence_suggestion_duration_seconds_count")
        assert value is not None
        return value

    asyncio.run(scorer.score(["No target here", "Nor here"], [None, None]))
    assert observed() == 0
    asyncio.run(scorer.score(["Sad news today", "Plain text"], ["joy", None]))
    assert observed() == 1
    scorer.close()
