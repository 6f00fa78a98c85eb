"""models.training.train: a tiny end-to-end run (random DistilBERT), resume, and the pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import models.training.train as training
from models.artifact import MANIFEST_NAME, WEIGHTS_NAME
from models.backbone import random_distilbert_config
from models.inference import TransformerScorer
from models.loading import load_scorer
from models.training.data import Example

EMOTION_ROWS = [
    ("i feel so happy and loved today", "joy"),
    ("i feel really sad and lonely", "sadness"),
    ("i am furious at how rude they were", "anger"),
    ("i feel scared of the dark", "fear"),
    ("i was shocked and amazed by the news", "surprise"),
    ("i feel love for my family", "love"),
]
SENTIMENT_ROWS = [
    ("Best concert ever, thank you @user!", "positive"),
    ("Traffic is terrible again, worst commute", "negative"),
    ("The meeting is at 3pm on Tuesday", "neutral"),
]
GOEMOTIONS_ROWS = [
    ({"text": "This is great, thanks!", "labels": ["gratitude"]}),
    ({"text": "It is on the second floor.", "labels": ["neutral"]}),
    ({"text": "That is gross.", "labels": ["disgust"]}),
    ({"text": "I'm so nervous and sad", "labels": ["nervousness", "sadness"]}),
    ({"text": "Why would they do that?", "labels": ["confusion"]}),
]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def data(tmp_path: Path) -> dict[str, Path]:
    emotion = [{"text": f"{t} {i}", "label": label} for i in range(4) for t, label in EMOTION_ROWS]
    sentiment = [
        {"text": f"{t} {i}", "label": label} for i in range(8) for t, label in SENTIMENT_ROWS
    ]
    return {
        "emotion": _write(tmp_path / "emotion.jsonl", emotion),
        "sentiment": _write(tmp_path / "sentiment.jsonl", sentiment),
        "goemotions": _write(tmp_path / "goemotions.jsonl", GOEMOTIONS_ROWS * 4),
    }


def _config(data: dict[str, Path], out: Path, **changes: object) -> training.TrainConfig:
    config = training.TrainConfig(
        output_dir=out,
        checkpoint_dir=out.parent / f"{out.name}-checkpoints",
        emotion_train=data["emotion"],
        sentiment_train=data["sentiment"],
        emotion_validation=data["emotion"],
        sentiment_validation=data["sentiment"],
        goemotions_validation=data["goemotions"],
        none_calibration=data["goemotions"],
        backbone="config:distilbert",
        backbone_config=random_distilbert_config(),
        batch_size=8,
        max_steps=3,
        torch_threads=1,
        progress=False,
        name="tiny",
    )
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def test_tiny_training_run_produces_a_loadable_model(data: dict[str, Path], tmp_path: Path) -> None:
    # 16 of each task's 24 rows train; the 8 sentiment rows left out tune the prior offsets.
    config = _config(data, tmp_path / "model", max_examples_per_task=16)
    out = training.train(config)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["training"]["steps"] == 3
    assert manifest["training"]["examples"] == {"emotion": 16, "sentiment": 16}
    assert 0.0 <= manifest["none_threshold"] <= 1.0
    metrics = manifest["metrics"]
    assert set(metrics) == {
        "none_calibration",
        "sentiment_calibration",
        "carer_validation",
        "tweeteval_sentiment_validation",
        "goemotions_validation",
    }
    for key in ("accuracy", "macro_f1", "macro_recall", "roc_auc_ovr_macro", "per_class"):
        assert key in metrics["carer_validation"]
    # love is joy: the emotion head has five classes.
    assert set(metrics["carer_validation"]["per_class"]) == {
        "joy",
        "sadness",
        "anger",
        "fear",
        "surprise",
    }
    assert "none" in metrics["goemotions_validation"]["served"]["per_class"]

    scorer = load_scorer(out, device="cpu")
    assert isinstance(scorer, TransformerScorer)
    assert scorer.none_threshold == manifest["none_threshold"]
    assert metrics["sentiment_calibration"]["n"] == 8
    offsets = manifest["sentiment_log_offsets"]
    assert set(offsets) == {"negative", "neutral", "positive"} and offsets["neutral"] == 0.0
    assert scorer.sentiment_factors == pytest.approx(np.exp(list(offsets.values())))
    [score] = scorer.score(["i feel happy. the bus is late!"])
    assert sum(score.emotion.probabilities.values()) == pytest.approx(1.0)


def test_resume_continues_exactly_where_it_stopped(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = {
        "none_calibration": None,
        "emotion_validation": None,
        "sentiment_validation": None,
        "goemotions_validation": None,
    }
    straight = training.train(_config(data, tmp_path / "straight", **fast))

    save = training._save_checkpoint

    def crash_after_step_two(path: Path, step: int, *args: object) -> None:
        save(path, step, *args)  # type: ignore[arg-type]
        if step == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "_save_checkpoint", crash_after_step_two)
    interrupted = _config(data, tmp_path / "resumed", checkpoint_every=1, **fast)
    with pytest.raises(KeyboardInterrupt):
        training.train(interrupted)
    monkeypatch.setattr(training, "_save_checkpoint", save)
    interrupted.resume = True
    resumed = training.train(interrupted)

    expected = load_file(str(straight / WEIGHTS_NAME))
    actual = load_file(str(resumed / WEIGHTS_NAME))
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key


def test_resume_refuses_a_checkpoint_of_other_settings(
    data: dict[str, Path], tmp_path: Path
) -> None:
    fast = {
        "none_calibration": None,
        "emotion_validation": None,
        "sentiment_validation": None,
        "goemotions_validation": None,
    }
    config = _config(data, tmp_path / "model", **fast)
    training.train(config)
    other = _config(data, tmp_path / "model", resume=True, lr=1e-3, **fast)
    with pytest.raises(ValueError, match="different settings"):
        training.train(other)


def test_batch_order_is_seeded_complete_and_bucketed() -> None:
    lengths = list(np.random.default_rng(0).integers(3, 64, size=1000))
    first = training.batch_order(lengths, 32, 2, seed=5)
    assert [b.tolist() for b in first] == [
        b.tolist() for b in training.batch_order(lengths, 32, 2, seed=5)
    ]
    per_epoch = len(first) // 2
    for epoch in range(2):
        seen = np.concatenate(first[epoch * per_epoch : (epoch + 1) * per_epoch])
        assert sorted(seen.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(np.asarray(lengths)[b]) for b in first])
    assert spread < 20  # random batches would span most of 3..64


def test_class_weights_favour_rare_classes() -> None:
    examples = (
        [Example("a", "sentiment", "neutral")] * 8
        + [Example("b", "sentiment", "negative")] * 2
        + [Example("c", "sentiment", "positive")] * 2
    )
    weights = training.class_weights(examples, "sentiment", 0.5)
    negative, neutral, positive = weights.tolist()
    assert negative == positive > 1.0 > neutral
    assert training.class_weights(examples, "sentiment", 0.0).tolist() == [1.0, 1.0, 1.0]


def test_linear_schedule_warms_up_then_decays() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = training.linear_schedule(optimizer, total_steps=100, warmup_ratio=0.1)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.1) and max(rates) == pytest.approx(1.0)
    assert rates.index(max(rates)) == 9 and rates[-1] < 0.02


def test_command_line_flags_build_the_config(tmp_path: Path) -> None:
    config = training._parse_args(
        [
            "--output-dir",
            str(tmp_path),
            "--epochs",
            "2",
            "--max-examples-per-task",
            "none",
            "--none-calibration",
            "none",
            "--no-progress",
            "--lr",
            "5e-5",
        ]
    )
    assert config.output_dir == tmp_path and config.epochs == 2
    assert config.max_examples_per_task is None and config.none_calibration is None
    assert config.progress is False and config.lr == 5e-5


def test_sentiment_offsets_rebalance_recall() -> None:
    from models.training.calibrate import macro_recall, tune_sentiment_offsets

    labels = ["negative", "neutral", "positive"]
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 3000)
    logits = rng.normal(0.0, 1.0, (3000, 3))
    logits[np.arange(3000), gold] += 1.5
    logits[:, 0] -= 1.0  # a head that under-predicts `negative`
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    offsets, report = tune_sentiment_offsets(probabilities, gold, labels)
    assert offsets["neutral"] == 0.0
    assert 0.6 <= offsets["negative"] - offsets["positive"] <= 1.4  # undoes the -1.0 shift
    assert report["macro_recall_with_offsets"] > report["macro_recall_without"] + 0.03
    shifted = np.log(probabilities) + [offsets[k] for k in labels]
    assert macro_recall(gold, shifted.argmax(1), 3) == pytest.approx(
        report["macro_recall_with_offsets"], abs=1e-4
    )
