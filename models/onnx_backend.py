"""ONNX Runtime as the scoring network on the CPU (`backend="onnx"`).

The network (encoder, mean pooling, both heads) is exported from whatever model directory
is loaded, at load time, into a cache directory keyed by a hash of everything the graph
depends on: the manifest, the stored tensors, the backbone package's version and the
exporter's versions. New weights get a new key, so no ONNX file is ever committed or stale.
fp32 is the exported graph; int8 is ONNX Runtime's dynamic quantisation of it (per-channel
int8 weights of every MatMul, activations quantised per call), the counterpart of torch's
`quantize_dynamic`. A fresh export is checked against the torch network on padded batches
of several shapes before it is used.

Only `TransformerScorer._forward` runs here; the recommendation step (models/recommend)
keeps using the torch network the scorer also holds, because it needs the encoder's states.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.artifact import MANIFEST_NAME, WEIGHTS_NAME
from models.network import HeadLogits, SentimentEmotionModel

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1  # bump when the exported graph changes for the same weights
OPSET = 17
# Largest difference in logits between the export and the torch network it came from.
EXPORT_TOLERANCE = 1e-3
_VERSIONED = ("torch", "transformers", "onnx", "onnxruntime")


class OnnxExportError(RuntimeError):
    """The export failed or does not reproduce the torch network."""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def cache_key(model_dir: Path, backbone: str) -> str:
    """Hash of what the exported graph depends on (weights, manifest, backbone, exporters)."""
    digest = hashlib.sha256()
    for name in (MANIFEST_NAME, WEIGHTS_NAME):
        with open(model_dir / name, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    versions = {name: _version(name) for name in _VERSIONED}
    if backbone.startswith("package:"):
        versions["backbone"] = _version(backbone.removeprefix("package:"))
    digest.update(json.dumps({"format": EXPORT_FORMAT, **versions}, sort_keys=True).encode())
    return digest.hexdigest()[:24]


class _Heads(torch.nn.Module):
    """The network with plain tensor outputs (ONNX outputs are tensors, not tuples)."""

    def __init__(self, model: SentimentEmotionModel):
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(input_ids, attention_mask)
        return logits.sentiment, logits.emotion


def _probe_batches(vocab_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Padded batches of several shapes, unlike the traced example's."""
    generator = np.random.default_rng(0)
    batches = []
    for rows, width in ((1, 5), (3, 23), (7, 64)):
        ids = generator.integers(1000, min(vocab_size, 20_000), (rows, width), dtype=np.int64)
        mask = np.ones_like(ids)
        for row in range(1, rows):
            mask[row, width - row * (width // (rows + 1)) :] = 0
        batches.append((ids, mask))
    return batches


def _eager_copy(model: SentimentEmotionModel) -> SentimentEmotionModel:
    """The same network and weights, with eager attention modules."""
    config = copy.deepcopy(model.encoder.config)
    encoder = type(model.encoder)._from_config(config, attn_implementation="eager")
    copied = SentimentEmotionModel(
        encoder,
        n_sentiment=model.sentiment_head.out_features,
        n_emotion=model.emotion_head.out_features,
    )
    copied.load_state_dict(model.state_dict())
    return copied.eval()


def export_fp32(model: SentimentEmotionModel, target: Path) -> None:
    """Trace the network to ONNX at `target` and check it reproduces the torch outputs."""
    # Eager attention traces to plain ops that accept any batch and length; the trace of the
    # SDPA path did not (logits off by 0.3 at other shapes). A copy built with eager attention
    # is traced; switching the live model's attention instead broke its own outputs.
    traced = _eager_copy(model)
    example_ids = torch.randint(1000, 2000, (2, 16))
    example_mask = torch.ones_like(example_ids)
    example_mask[1, 10:] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter
        torch.onnx.export(
            _Heads(traced),
            (example_ids, example_mask),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentiment", "emotion"],
            dynamic_axes={
                "input_ids": {0: "rows", 1: "tokens"},
                "attention_mask": {0: "rows", 1: "tokens"},
                "sentiment": {0: "rows"},
                "emotion": {0: "rows"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    del traced
    session = _session(target, threads=None)
    worst = 0.0
    with torch.inference_mode():
        for ids, mask in _probe_batches(int(model.encoder.config.vocab_size)):
            expected = model(torch.from_numpy(ids), torch.from_numpy(mask))
            got = session.run(None, {"input_ids": ids, "attention_mask": mask})
            worst = max(
                worst,
                float(np.abs(got[0] - expected.sentiment.float().numpy()).max()),
                float(np.abs(got[1] - expected.emotion.float().numpy()).max()),
            )
    if worst > EXPORT_TOLERANCE:
        raise OnnxExportError(f"ONNX export differs from the torch network by {worst:.3g}")


def quantize_int8(fp32: Path, target: Path) -> None:
    """ONNX Runtime dynamic quantisation: int8 per-channel weights, int8 activations."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=True, reduce_range=False
    )


def _session(path: Path, threads: int | None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ensure_exported(
    model: SentimentEmotionModel, model_dir: Path, backbone: str, cache_dir: Path, precision: str
) -> Path:
    """The ONNX file of this model in `precision` ("fp32" or "int8"), exported if absent.

    Files are written under a temporary name and renamed, so concurrent workers sharing the
    cache never read a half-written graph.
    """
    if precision not in ("fp32", "int8"):
        raise ValueError(f"the onnx backend runs fp32 or int8, not {precision!r}")
    directory = Path(cache_dir).expanduser() / cache_key(model_dir, backbone)
    fp32 = directory / "model-fp32.onnx"
    wanted = directory / f"model-{precision}.onnx"
    if wanted.is_file():
        return wanted
    directory.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        log.info("exporting %s to ONNX in %s", model_dir, directory)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            staged = Path(scratch) / fp32.name
            export_fp32(model, staged)
            os.replace(staged, fp32)
    if precision == "int8":
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            staged = Path(scratch) / wanted.name
            quantize_int8(fp32, staged)
            os.replace(staged, wanted)
    return wanted


class OnnxNetwork:
    """Callable like `SentimentEmotionModel`: (ids, mask) -> `HeadLogits`, run by ONNX
    Runtime on the CPU. One call at a time (the scorer's model thread)."""

    def __init__(self, path: Path, threads: int | None = None):
        self.path = Path(path)
        self.session = _session(self.path, threads)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> HeadLogits:
        sentiment, emotion = self.session.run(
            None,
            {
                "input_ids": input_ids.numpy().astype(np.int64, copy=False),
                "attention_mask": attention_mask.numpy().astype(np.int64, copy=False),
            },
        )
        return HeadLogits(torch.from_numpy(sentiment), torch.from_numpy(emotion))
