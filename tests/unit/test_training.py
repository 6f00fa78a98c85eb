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
    goemotions = [
        {**row, "text": f"{row['text']} {i}"} for i in range(4) for row in GOEMOTIONS_ROWS
    ]
    tweeteval_emotion = [
        {"text": f"{t} #{i}", "label": label}
        for i in range(3)
        for t, label in [("so proud of you", "optimism"), ("ugh this again", "anger")]
    ]
    sst2 = [
        {"text": f"{t} {i}", "label": label}
        for i in range(3)
        for t, label in [("a moving film", "positive"), ("dull and flat", "negative")]
    ]
    return {
        "emotion": _write(tmp_path / "emotion.jsonl", emotion),
        "sentiment": _write(tmp_path / "sentiment.jsonl", sentiment),
        "goemotions": _write(tmp_path / "goemotions.jsonl", goemotions),
        "tweeteval_emotion": _write(tmp_path / "tweeteval_emotion.jsonl", tweeteval_emotion),
        "sst2": _write(tmp_path / "sst2.jsonl", sst2),
    }


def _config(data: dict[str, Path], out: Path, **changes: object) -> training.TrainConfig:
    config = training.TrainConfig(
        output_dir=out,
        checkpoint_dir=out.parent / f"{out.name}-checkpoints",
        emotion_train=data["emotion"],
        sentiment_train=data["sentiment"],
        goemotions_train=data["goemotions"],
        tweeteval_emotion_train=data["tweeteval_emotion"],
        sst2_train=data["sst2"],
        carer_per_epoch=8,
        goemotions_per_epoch=4,
        tweeteval_emotion_per_epoch=2,
        sentiment_per_epoch=8,
        sst2_per_epoch=2,
        emotion_validation=data["emotion"],
        sentiment_validation=data["sentiment"],
        goemotions_validation=data["goemotions"],
        tweeteval_emotion_validation=data["tweeteval_emotion"],
        none_calibration=data["goemotions"],
        none_calibration_examples=6,
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
    # The 8 sentiment rows outside the seeded 16 tune the prior offsets and the 6 GoEmotions
    # calibration rows the `none` threshold: neither set trains.
    config = _config(data, tmp_path / "model", max_examples_per_task=16)
    out = training.train(config)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["training"]["steps"] == 3
    # 20 GoEmotions rows: 4 disgust-only and 4 two-emotion rows are dropped, 6 are calibration.
    assert manifest["training"]["examples"] == {
        "carer": 24,
        "goemotions": 6,
        "tweeteval_emotion": 6,
        "tweeteval_sentiment": 16,
        "sst2": 6,
    }
    assert manifest["emotion_none_class"] is True
    assert 0.0 <= manifest["none_threshold"] <= 1.0
    metrics = manifest["metrics"]
    assert set(metrics) == {
        "none_calibration",
        "sentiment_calibration",
        "carer_validation",
        "tweeteval_sentiment_validation",
        "goemotions_validation",
        "tweeteval_emotion_validation",
    }
    # TweetEval emotion has three of the five emotions: also read as a 3-way task.
    assert metrics["tweeteval_emotion_validation"]["present_classes_only"]["n"] == 6
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
    # Six outputs in the head, five served probabilities summing to 1.
    assert scorer.model.emotion_head.out_features == 6
    assert set(score.emotion.probabilities) == {"joy", "surprise", "anger", "fear", "sadness"}
    assert sum(score.emotion.probabilities.values()) == pytest.approx(1.0)


def test_resume_continues_exactly_where_it_stopped(
    data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = {
        "none_calibration": None,
        "emotion_validation": None,
        "sentiment_validation": None,
        "goemotions_validation": None,
        "tweeteval_emotion_validation": None,
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
        "tweeteval_emotion_validation": None,
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


def test_calibration_rows_never_train(data: dict[str, Path], tmp_path: Path) -> None:
    from models.training.calibrate import heldout_sentiment_examples, none_calibration_examples

    config = _config(data, tmp_path / "model", max_examples_per_task=16)
    trained = {e.text for source in training.load_sources(config) for e in source.examples}
    none_rows = none_calibration_examples(data["goemotions"], 6, config.seed)
    sentiment_rows = heldout_sentiment_examples(data["sentiment"], 16, config.seed, 4000)
    assert len(none_rows) == 6 and len(sentiment_rows) == 8
    assert not trained & {e.text for e in [*none_rows, *sentiment_rows]}


def test_sources_map_labels_and_mark_sst2(data: dict[str, Path], tmp_path: Path) -> None:
    config = _config(data, tmp_path / "model", none_calibration=None)
    sources = {source.name: source for source in training.load_sources(config)}
    goemotions = {e.text.rsplit(" ", 1)[0]: e.label for e in sources["goemotions"].examples}
    # neutral is the `none` class; disgust-only and two-emotion rows are not trained on.
    assert goemotions == {
        "This is great, thanks!": "joy",
        "It is on the second floor.": "none",
        "Why would they do that?": "surprise",
    }
    assert {e.label for e in sources["tweeteval_emotion"].examples} == {"joy", "anger"}
    assert sources["sst2"].mask_neutral and not sources["tweeteval_sentiment"].mask_neutral
    none_row = next(e for e in sources["goemotions"].examples if e.label == "none")
    assert none_row.label_index == 5  # the head's sixth output

    without_none = _config(data, tmp_path / "m2", none_calibration=None, emotion_none_class=False)
    labels = {e.label for e in training.load_sources(without_none)[1].examples}
    assert "none" not in labels


def test_masked_rows_leave_the_neutral_output_out_of_the_loss() -> None:
    logits = torch.tensor([[0.5, 9.0, 0.1], [0.2, -3.0, 1.0], [0.3, 0.3, 0.3]], requires_grad=True)
    labels = torch.tensor([0, 2, 1])  # rows 0 and 1 from SST-2 (no neutral), row 2 TweetEval
    mask = torch.tensor([True, True, False])
    ce = torch.nn.CrossEntropyLoss(reduction="sum")
    loss = training.head_loss(logits, labels, mask, ce, ce)
    expected = ce(logits[:2][:, [0, 2]], torch.tensor([0, 1])) + ce(logits[2:], labels[2:])
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert logits.grad is not None
    assert logits.grad[0, 1] == 0 and logits.grad[1, 1] == 0  # neutral of masked rows: no push
    assert logits.grad[2, 1] != 0
    with pytest.raises(ValueError, match="labelled neutral"):
        training.head_loss(logits, torch.tensor([1, 2, 1]), mask, ce, ce)


def test_epoch_draws_cover_a_source_before_repeating() -> None:
    draws = training.epoch_draws([10, 3], [4, 5], epochs=3, seed=1)
    assert len(draws) == 3 and all(len(epoch) == 2 for epoch in draws)
    big = np.concatenate([epoch[0] for epoch in draws])
    assert sorted(big[:10].tolist()) == list(range(10))  # every row once before any twice
    small = np.concatenate([epoch[1] for epoch in draws])
    assert len(small) == 15 and sorted(small[:3].tolist()) == [0, 1, 2]
    again = training.epoch_draws([10, 3], [4, 5], epochs=3, seed=1)
    assert all(
        np.array_equal(a, b)
        for x, y in zip(draws, again, strict=True)
        for a, b in zip(x, y, strict=True)
    )


def test_time_budget_decays_the_rate_and_stops(data: dict[str, Path], tmp_path: Path) -> None:
    clock = iter([0.5, 0.95, 1.0])  # read once per step after the warmup step
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = training.linear_schedule(optimizer, 1000, 0.001, time_used=lambda: next(clock))
    rates = []
    for _ in range(3):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    # Steps alone would keep the rate near 1; the budget's share sets it.
    assert rates == pytest.approx([0.5, 0.05, 0.0])

    config = _config(
        data,
        tmp_path / "model",
        time_budget_minutes=1e-9,
        max_steps=None,
        none_calibration=None,
        emotion_validation=None,
        sentiment_validation=None,
        goemotions_validation=None,
        tweeteval_emotion_validation=None,
    )
    manifest = json.loads((training.train(config) / MANIFEST_NAME).read_text())
    assert manifest["training"]["stopped_by_time_budget"] is True
    assert manifest["training"]["steps"] < manifest["training"]["planned_steps"]


def test_warm_start_widens_a_five_way_emotion_head(tmp_path: Path) -> None:
    from tests.tiny_model import write_random_model

    old = write_random_model(tmp_path / "old")
    from models.artifact import ModelManifest
    from models.loading import build_network

    manifest = ModelManifest.read(old)
    previous = build_network(old, manifest)
    encoder = build_network(old, manifest).encoder
    model = training.SentimentEmotionModel(encoder, n_emotion=6)
    widened = training.warm_start(model, old)
    assert widened == ["emotion_head.weight", "emotion_head.bias"]
    assert torch.equal(model.emotion_head.weight[:5], previous.emotion_head.weight)
    assert torch.count_nonzero(model.emotion_head.weight[5]) == 0
    assert torch.equal(model.sentiment_head.weight, previous.sentiment_head.weight)
