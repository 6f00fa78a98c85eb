"""The committed JSON Schema files match the code, and real payloads satisfy them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jsonschema
import orjson
import pytest

from models.base import LabelScores, ModelInfo, SegmentScore, TextScore
from schemas.events import DeadLetterReason, EditorEvent
from schemas.export import CONTRACTS, render, schema_path
from stream.codec import dead_letter, encode, scored_event


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_committed_schema_matches_code(name: str) -> None:
    committed = schema_path(name).read_text()
    assert committed == render(CONTRACTS[name]), (
        f"schemas/v1/{name}.schema.json drifted from schemas/events.py: "
        "run `python -m schemas.export` and review the diff"
    )


def _schema(name: str) -> dict:
    return json.loads(schema_path(name).read_text())


def _score() -> TextScore:
    sentiment = LabelScores("positive", {"negative": 0.1, "neutral": 0.2, "positive": 0.7})
    emotion = LabelScores(
        "joy", {"joy": 0.8, "surprise": 0.05, "anger": 0.05, "fear": 0.05, "sadness": 0.05}
    )
    segment = SegmentScore(0, 5, 4, sentiment, emotion, 0.6)
    return TextScore(sentiment, 0.6, emotion, 0.6, [segment], 4)


def test_scored_event_from_codec_satisfies_schema() -> None:
    event = EditorEvent(
        event_id="e1",
        doc_id="d1",
        user_id="u1",
        revision=2,
        text="Hello",
        produced_at=datetime.now(UTC),
    )
    model = ModelInfo("valence", "1", "minilm", "cpu", "fp32")
    timings = {
        "produced_at": event.produced_at,
        "received_at": datetime.now(UTC),
        "queued_ms": 1.0,
        "inference_ms": 2.0,
        "batch_events": 1,
        "batch_tokens": 4,
    }
    payload = orjson.loads(encode(scored_event(event, _score(), model, timings, datetime.now(UTC))))
    jsonschema.validate(payload, _schema("scored_event"))
    assert payload["sentiment"]["valence"] == pytest.approx(0.6)


def test_dead_letter_from_codec_satisfies_schema() -> None:
    letter = dead_letter(
        b"\xff\xfe",
        DeadLetterReason.NOT_UTF8,
        "bad byte",
        topic="t",
        partition=0,
        offset=7,
        timestamp_ms=1,
        key=b"k",
        event_id=None,
    )
    jsonschema.validate(orjson.loads(encode(letter)), _schema("dead_letter"))


def test_sample_events_satisfy_input_schema() -> None:
    from stream.cli.main import SAMPLE_EVENTS

    lines = SAMPLE_EVENTS.read_text().splitlines()
    assert len(lines) >= 10
    for line in lines:
        jsonschema.validate(json.loads(line), _schema("editor_event"))
