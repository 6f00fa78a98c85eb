"""The SGD recipe, distillation into fewer layers, and `auto` precision, on tiny random models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional

import models.training.train as training
from models.artifact import MANIFEST_NAME, WEIGHTS_NAME, ModelManifest
from models.backbone import build_random_distilbert, random_distilbert_config
from models.inference import TransformerScorer
from models.loading import load_scorer
from models.network import SentimentEmotionModel, keep_encoder_layers
from models.training.distill import DistillConfig, build_student, distil
from models.training.recipes import one_cycle, smoothed_kl_loss
from tests.unit.test_training import _config, data  # noqa: F401  (data is a fixture)

FAST = {
    "none_calibration": None,
    "sentiment_validation": None,
    "goemotions_validation": None,
}


def test_sgd_recipe_trains_and_loads(data: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    config = _config(
        data,
        tmp_path / "sgd",
        optimizer="sgd",
        lr=0.01,
        head_lr=0.05,
        weight_decay=1e-4,
        label_smoothing=0.1,
        **FAST,
    )
    out = training.train(config)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["training"]["config"]["optimizer"] == "sgd"
    assert manifest["training"]["steps"] == 3
    assert "accuracy" in manifest["metrics"]["carer_validation"]
    [score] = load_scorer(out, device="cpu").score(["i feel happy"])
    assert sum(score.sentiment.probabilities.values()) == pytest.approx(1.0)


def test_unknown_optimizer_is_refused(data: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="unknown optimizer"):
        training.train(_config(data, tmp_path / "bad", optimizer="lion", **FAST))


def test_one_cycle_warms_up_then_anneals_with_inverse_momentum() -> None:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0, momentum=0.9, nesterov=True)
    schedule = one_cycle(optimizer, total_steps=100)
    rates, momenta = [], []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(1.0 / 25)
    assert max(rates) == pytest.approx(1.0, abs=1e-3) and 25 <= rates.index(max(rates)) <= 32
    assert rates[-1] < 1e-3
    assert momenta[0] == pytest.approx(0.95) and min(momenta) == pytest.approx(0.85, abs=1e-3)


def test_smoothed_kl_is_smoothed_cross_entropy_minus_a_constant() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 5)
    target = torch.tensor([0, 1, 2, 3, 4, 0])
    plain = smoothed_kl_loss(logits, target, 0.0, None)
    assert plain == pytest.approx(functional.cross_entropy(logits, target, reduction="sum"))
    smoothing = 0.1
    soft = torch.full((5,), smoothing / 5)
    soft[0] += 1 - smoothing
    entropy = float(-(soft * soft.log()).sum())
    smoothed = smoothed_kl_loss(logits, target, smoothing, None)
    expected = functional.cross_entropy(logits, target, label_smoothing=smoothing, reduction="sum")
    assert float(smoothed) == pytest.approx(float(expected) - 6 * entropy, rel=1e-5)
    weight = torch.tensor([2.0, 1.0, 1.0, 1.0, 1.0])
    weighted = smoothed_kl_loss(logits[:1], target[:1], smoothing, weight)
    assert float(weighted) == pytest.approx(
        2 * float(smoothed_kl_loss(logits[:1], target[:1], smoothing, None))
    )


def test_student_keeps_the_chosen_layers() -> None:
    torch.manual_seed(0)
    teacher = SentimentEmotionModel(build_random_distilbert(random_distilbert_config(n_layers=3)))
    teacher.eval()
    ids = torch.tensor([[101, 2000, 2001, 102]])
    mask = torch.ones_like(ids)
    same = build_student(teacher, [0, 1, 2])
    assert torch.equal(same(ids, mask).emotion, teacher(ids, mask).emotion)
    student = build_student(teacher, [0, 2])
    assert len(student.encoder.transformer.layer) == 2
    assert student.encoder.transformer.layer[1] is not teacher.encoder.transformer.layer[2]
    assert torch.equal(
        student.encoder.transformer.layer[1].ffn.lin1.weight,
        teacher.encoder.transformer.layer[2].ffn.lin1.weight,
    )
    for bad in ([], [2, 0], [0, 3], [1, 1]):
        with pytest.raises(ValueError):
            keep_encoder_layers(build_random_distilbert(random_distilbert_config(n_layers=3)), bad)


def test_distillation_end_to_end(data: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    teacher_dir = training.train(_config(data, tmp_path / "teacher", **FAST))
    base = _config(data, tmp_path / "student")
    config = DistillConfig(
        **{k: getattr(base, k) for k in base.__dataclass_fields__},
    )
    config.teacher_dir = teacher_dir
    config.layers = "1"
    config.logits_cache = tmp_path / "logits.pt"
    config.max_steps = 3
    out = distil(config)
    manifest = ModelManifest.read(out)
    assert manifest.encoder_layers == [1]
    assert manifest.training["method"] == "distillation"
    assert "carer_validation" in manifest.metrics
    stored = load_file(str(out / WEIGHTS_NAME))
    assert not any(k.startswith("encoder.transformer.layer.1.") for k in stored)
    assert any(k.startswith("encoder.transformer.layer.0.") for k in stored)
    scorer = load_scorer(out, device="cpu")
    assert isinstance(scorer, TransformerScorer)
    assert len(scorer.model.encoder.transformer.layer) == 1
    assert config.logits_cache.is_file()  # reused by a second run with the same teacher
    again = distil(config)
    assert load_file(str(again / WEIGHTS_NAME)).keys() == stored.keys()


def test_auto_precision_follows_the_manifest_on_cpu(data: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    out = training.train(_config(data, tmp_path / "m", **FAST))
    assert load_scorer(out, device="cpu").info.dtype == "float32"
    manifest = ModelManifest.read(out)
    manifest.cpu_precision = "int8"
    manifest.write(out)
    assert load_scorer(out, device="cpu").info.dtype == "int8"
    assert load_scorer(out, device="cpu", precision="fp32").info.dtype == "float32"
