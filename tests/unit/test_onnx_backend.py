"""The ONNX Runtime backend: exported from the loaded model, cached by its files' hash, and
scoring like the torch network it came from."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from models.loading import load_scorer, resolve_backend
from models.onnx_backend import cache_key
from stream.config import SHIPPED_MODEL_DIR
from tests.tiny_model import write_random_model

TEXTS = [
    "I am so happy today!",
    "This is terrible. I hate waiting. Why does it always rain?",
    "ok",
    " ".join(["The committee reviewed every proposal in detail."] * 30),
]


def _probabilities(scores: list) -> np.ndarray:  # type: ignore[type-arg]
    return np.array(
        [[*s.sentiment.probabilities.values(), *s.emotion.probabilities.values()] for s in scores]
    )


@pytest.mark.parametrize("model_dir", ["tiny", "shipped"])
def test_onnx_fp32_scores_like_torch_and_int8_stays_close(model_dir: str, tmp_path: Path) -> None:
    path = write_random_model(tmp_path / "m") if model_dir == "tiny" else SHIPPED_MODEL_DIR
    cache = tmp_path / "onnx"
    reference = load_scorer(path, device="cpu", precision="fp32", backend="torch")
    exported = load_scorer(
        path, device="cpu", precision="fp32", backend="onnx", onnx_cache_dir=cache
    )
    quantised = load_scorer(
        path, device="cpu", precision="int8", backend="onnx", onnx_cache_dir=cache
    )
    assert exported.info.backend == "onnx" and quantised.info.dtype == "int8"
    torch_p = _probabilities(reference.score(TEXTS))
    assert np.abs(_probabilities(exported.score(TEXTS)) - torch_p).max() < 1e-4
    int8_p = _probabilities(quantised.score(TEXTS))
    assert 0 < np.abs(int8_p - torch_p).max() < 0.2  # quantised: close, not identical
    files = sorted(p.name for p in cache.glob("*/*.onnx"))
    assert files == ["model-fp32.onnx", "model-int8.onnx"]


def test_the_export_is_reused_and_new_weights_get_a_new_one(tmp_path: Path) -> None:
    first = write_random_model(tmp_path / "a", seed=0)
    second = write_random_model(tmp_path / "b", seed=1)
    assert cache_key(first, "x") != cache_key(second, "x")
    copy = shutil.copytree(first, tmp_path / "copy")  # same files elsewhere: same export
    assert cache_key(first, "x") == cache_key(copy, "x")
    assert cache_key(first, "x") != cache_key(first, "package:torch")  # backbone version counts
    cache = tmp_path / "onnx"
    load_scorer(first, device="cpu", precision="fp32", backend="onnx", onnx_cache_dir=cache)
    exported = next(cache.glob("*/model-fp32.onnx"))
    stamp = exported.stat().st_mtime_ns
    load_scorer(first, device="cpu", precision="fp32", backend="onnx", onnx_cache_dir=cache)
    assert exported.stat().st_mtime_ns == stamp  # not exported again
    load_scorer(second, device="cpu", precision="fp32", backend="onnx", onnx_cache_dir=cache)
    assert len(list(cache.glob("*/model-fp32.onnx"))) == 2


def test_backend_choice() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_backend("auto", cpu) == "onnx"
    assert resolve_backend("auto", cuda) == "torch"
    assert resolve_backend("torch", cpu) == "torch"
    with pytest.raises(ValueError, match="CPU only"):
        resolve_backend("onnx", cuda)
    with pytest.raises(ValueError):
        resolve_backend("tensorrt", cpu)


def test_onnx_backend_rejects_half_precision(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fp32 or int8"):
        load_scorer(
            write_random_model(tmp_path / "m"),
            device="cpu",
            precision="bf16",
            backend="onnx",
            onnx_cache_dir=tmp_path / "onnx",
        )
