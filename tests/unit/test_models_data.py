"""models.training.data and models.training.evaluation: label mapping of the shared data sets,
and metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.labels import GOEMOTIONS_TO_EMOTION, NO_EMOTION
from models.loading import load_scorer
from models.training.data import read_examples
from models.training.evaluation import evaluate
from tests.tiny_model import write_random_model


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_carer_love_is_joy(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "carer.jsonl",
        [{"text": "a", "label": "love"}, {"text": "b", "label": "sadness"}],
    )
    examples = read_examples(path, "emotion")
    assert [e.label for e in examples] == ["joy", "sadness"]
    assert [e.label_index for e in examples] == [0, 4]


def test_sentiment_words_map_and_unknown_words_are_skipped(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "sentiment.jsonl",
        [{"text": "a", "label": "positive"}, {"text": "b", "label": "mixed"}],
    )
    assert [e.label for e in read_examples(path, "sentiment")] == ["positive"]


def test_goemotions_ekman_grouping(tmp_path: Path) -> None:
    rows = [
        {"text": "thanks", "labels": ["gratitude"]},
        {"text": "hm", "labels": ["neutral"]},
        {"text": "ew", "labels": ["disgust"]},
        {"text": "both", "labels": ["nervousness", "sadness"]},
        {"text": "mixed", "labels": ["approval", "neutral"]},
        {"text": "what", "labels": ["confusion", "curiosity"]},
        {"text": "grr", "labels": ["annoyance", "disgust"]},
    ]
    path = _write(tmp_path / "go.jsonl", rows)
    labels = {e.text: e.label for e in read_examples(path, "emotion")}
    assert labels == {
        "thanks": "joy",
        "hm": NO_EMOTION,
        "mixed": "joy",
        "what": "surprise",
        "grr": "anger",
    }
    assert "hm" not in {e.text for e in read_examples(path, "emotion", include_none=False)}
    assert read_examples(path, "sentiment") == []


def test_goemotions_grouping_covers_every_label_but_disgust() -> None:
    names = [
        "admiration",
        "amusement",
        "anger",
        "annoyance",
        "approval",
        "caring",
        "confusion",
        "curiosity",
        "desire",
        "disappointment",
        "disapproval",
        "disgust",
        "embarrassment",
        "excitement",
        "fear",
        "gratitude",
        "grief",
        "joy",
        "love",
        "nervousness",
        "optimism",
        "pride",
        "realization",
        "relief",
        "remorse",
        "sadness",
        "surprise",
        "neutral",
    ]
    assert set(names) - set(GOEMOTIONS_TO_EMOTION) == {"disgust"}


def test_evaluate_reports_metrics(tmp_path: Path) -> None:
    scorer = load_scorer(write_random_model(tmp_path / "model"), device="cpu")
    emotion = _write(
        tmp_path / "emotion.jsonl",
        [
            {"text": f"text {i}", "label": label}
            for i, label in enumerate(["joy", "love", "fear", "anger", "sadness", "surprise"] * 3)
        ],
    )
    metrics = evaluate(scorer, emotion, "emotion")
    assert metrics["n"] == 18 and 0.0 <= metrics["accuracy"] <= 1.0
    assert 0.0 <= metrics["roc_auc_ovr_macro"] <= 1.0
    assert set(metrics["per_class"]) == {"joy", "fear", "anger", "sadness", "surprise"}
    assert metrics["served"]["n"] == 18

    sentiment = _write(
        tmp_path / "sentiment.jsonl",
        [
            {"text": f"t {i}", "label": w}
            for i, w in enumerate(["negative", "neutral", "positive"] * 2)
        ],
    )
    metrics = evaluate(scorer, sentiment, "sentiment")
    assert set(metrics) >= {"accuracy", "macro_f1", "macro_recall", "roc_auc_ovr_macro"}
    assert "served" not in metrics
    with pytest.raises(ValueError, match="no examples"):
        evaluate(scorer, sentiment, "emotion")


def test_goemotions_multi_label_rows(tmp_path: Path) -> None:
    # Rows labelled with two Valence emotions are dropped (a single-label head can be neither
    # trained nor scored on them); disgust and neutral next to one emotion are ignored.
    rows = [
        {"text": "joy and anger", "labels": ["joy", "anger"]},
        {"text": "two joys", "labels": ["gratitude", "admiration"]},
        {"text": "fear, neutral too", "labels": ["nervousness", "neutral"]},
        {"text": "sad, disgusted", "labels": ["grief", "disgust"]},
        {"text": "only disgust", "labels": ["disgust"]},
    ]
    labels = {e.text: e.label for e in read_examples(_write(tmp_path / "g.jsonl", rows), "emotion")}
    assert labels == {"two joys": "joy", "fear, neutral too": "fear", "sad, disgusted": "sadness"}


def test_none_examples_index_the_head_none_output(tmp_path: Path) -> None:
    from models.labels import EMOTION_HEAD_WITH_NONE

    path = _write(tmp_path / "g.jsonl", [{"text": "it is tuesday", "labels": ["neutral"]}])
    [example] = read_examples(path, "emotion")
    assert example.label == NO_EMOTION
    assert EMOTION_HEAD_WITH_NONE[example.label_index] == NO_EMOTION == "none"


def test_tweeteval_emotion_optimism_is_joy_and_scores_three_way(tmp_path: Path) -> None:
    rows = [
        {"text": f"tweet {i}", "label": label}
        for i, label in enumerate(["optimism", "joy", "anger", "sadness"] * 3)
    ]
    path = _write(tmp_path / "tweeteval_emotion.jsonl", rows)
    assert {e.label for e in read_examples(path, "emotion")} == {"joy", "anger", "sadness"}
    scorer = load_scorer(write_random_model(tmp_path / "model"), device="cpu")
    metrics = evaluate(scorer, path, "emotion")
    three_way = metrics["present_classes_only"]
    assert three_way["n"] == 12 and three_way["accuracy"] >= metrics["accuracy"]
