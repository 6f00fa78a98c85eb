"""Load a Valence model directory into a ready `Scorer` on the chosen device and precision."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from models.artifact import ModelManifest, load_tensors
from models.backbone import build_encoder, load_tokenizer
from models.base import DEFAULT_MAX_SEGMENT_TOKENS, Scorer
from models.inference import TransformerScorer
from models.network import BACKBONE_ONLY_PREFIXES, SentimentEmotionModel, keep_encoder_layers

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "fp32", "fp16", "bf16", "int8"]
Backend = Literal["auto", "torch", "onnx"]
DEFAULT_ONNX_CACHE = Path("~/.cache/valence/onnx")

_DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}
_DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "int8": "int8"}


def resolve_device(device: str) -> torch.device:
    """`auto` is CUDA when a GPU is visible, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda requested but no CUDA device is visible")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device, cpu_auto: str = "fp32") -> str:
    """`auto` is fp16 on CUDA and `cpu_auto` (the manifest's `cpu_precision`) on the CPU;
    int8 exists on the CPU only."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else cpu_auto
    if precision == "int8" and device.type != "cpu":
        raise ValueError("precision int8 (dynamic quantisation) runs on the CPU only")
    if precision not in _DTYPE_NAMES:
        raise ValueError(f"unknown precision {precision!r}")
    return precision


def _onnxruntime_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("onnxruntime") is not None and find_spec("onnx") is not None


def resolve_backend(backend: str, device: torch.device) -> str:
    """`auto` is ONNX Runtime on the CPU (when installed) and torch on CUDA; the onnx
    backend runs on the CPU only."""
    if backend == "auto":
        return "onnx" if device.type == "cpu" and _onnxruntime_installed() else "torch"
    if backend not in ("torch", "onnx"):
        raise ValueError(f"unknown backend {backend!r}")
    if backend == "onnx" and device.type != "cpu":
        raise ValueError("backend onnx (ONNX Runtime) runs on the CPU only")
    return backend


def build_network(model_dir: Path, manifest: ModelManifest) -> SentimentEmotionModel:
    """Rebuild the network in float32 on the CPU: backbone, then the stored tensors on top.

    Every stored tensor must land on a parameter of the same shape, and every parameter not
    stored must be one the backbone provides; anything else is an error, never a silent
    random init.
    """
    encoder = build_encoder(manifest.backbone, manifest.backbone_config)
    if manifest.encoder_layers is not None:  # a distilled student keeps some layers only
        keep_encoder_layers(encoder, manifest.encoder_layers)
    model = SentimentEmotionModel(
        encoder,
        n_sentiment=len(manifest.sentiment_labels),
        n_emotion=len(manifest.emotion_labels) + int(manifest.emotion_none_class),
        dropout=manifest.dropout,
    )
    stored = load_tensors(model_dir)
    expected = model.state_dict()
    unknown = sorted(set(stored) - set(expected))
    if unknown:
        raise ValueError(f"{model_dir}: stored tensors match no parameter: {unknown[:5]}")
    for key, tensor in stored.items():
        if tensor.shape != expected[key].shape:
            raise ValueError(
                f"{model_dir}: {key} has shape {tuple(tensor.shape)}, "
                f"the network expects {tuple(expected[key].shape)}"
            )
    not_stored = set(expected) - set(stored)
    if manifest.stored_params == "non_backbone":
        not_stored = {k for k in not_stored if not k.startswith(BACKBONE_ONLY_PREFIXES)}
    if not_stored:
        raise ValueError(f"{model_dir}: parameters missing from the file: {sorted(not_stored)[:5]}")
    floats = {
        key: (value.to(expected[key].dtype) if value.is_floating_point() else value)
        for key, value in stored.items()
    }
    model.load_state_dict(floats, strict=False)
    return model


def _check_materialised(model: nn.Module) -> None:
    # A meta tensor means some weight was never loaded; scoring with it would be garbage.
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_meta:
            raise RuntimeError(f"parameter {name} was not loaded (meta tensor)")


def apply_precision(
    model: SentimentEmotionModel, precision: str, device: torch.device
) -> SentimentEmotionModel:
    """Move to the device and cast the encoder; heads stay float32 (they are tiny)."""
    if precision == "int8":
        # Per-channel weights keep MiniLM's embeddings much closer to fp32 than per-tensor.
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():
            # torch deprecates eager-mode quantisation in favour of torchao, which Valence does
            # not depend on; the API still works, so keep the logs clean.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_channel.*")
            model.encoder = quantize_dynamic(
                model.encoder, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
            )
        return model
    model.to(device)
    nn.Module.to(
        model.encoder, dtype=_DTYPES[precision]
    )  # transformers' `to` wrapper confuses type checkers
    return model


def load_scorer(
    model_path: Path,
    device: str = "auto",
    precision: str = "auto",
    torch_threads: int | None = None,
    max_segment_tokens: int = DEFAULT_MAX_SEGMENT_TOKENS,
    *,
    pack_sentences: bool = False,
    whole_text: bool = True,
    segment_cache_size: int = 0,
    backend: str = "torch",
    onnx_cache_dir: Path = DEFAULT_ONNX_CACHE,
) -> Scorer:
    """Load a Valence model directory as a `TransformerScorer`, in eval mode.

    device: "auto" (CUDA if visible, else CPU), "cpu" or "cuda".
    precision: "auto" (fp16 on CUDA, the manifest's `cpu_precision` on the CPU), "fp32",
    "fp16", "bf16" or "int8"
    (CPU dynamic quantisation of the encoder's Linear layers).
    torch_threads: CPU threads torch may use (None leaves torch's default).
    max_segment_tokens: longer sentences are split into windows of this many tokens.
    pack_sentences: score neighbouring sentences together while they fit one window (off by
    default: segments are sentences; see models/inference.py `_packed`).
    whole_text: a multi-sentence text that fits one window is also scored whole, and that
    score is the text's own (models/inference.py); off: the mean of its sentences.
    segment_cache_size: segments whose results are kept so resent text is not scored again
    (models/segment_cache.py); 0, the default, keeps none.
    backend: "torch", "onnx" (ONNX Runtime on the CPU, fp32 or int8; the graph is exported
    from this model into `onnx_cache_dir`, see models/onnx_backend.py) or "auto" (onnx on
    the CPU when onnxruntime is installed, torch on CUDA).
    """
    model_dir = Path(model_path)
    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    manifest = ModelManifest.read(model_dir)
    target = resolve_device(device)
    chosen = resolve_precision(precision, target, manifest.cpu_precision)
    runner = resolve_backend(backend, target)
    model = build_network(model_dir, manifest)
    model.eval()
    network = None
    if runner == "onnx":
        from models.onnx_backend import OnnxNetwork, ensure_exported

        # The torch network stays fp32: recommendations run on it, scoring on the export.
        model = apply_precision(model, "fp32", target)
        _check_materialised(model)
        exported = ensure_exported(model, model_dir, manifest.backbone, onnx_cache_dir, chosen)
        network = OnnxNetwork(exported, torch_threads)
    else:
        model = apply_precision(model, chosen, target)
        _check_materialised(model)
    tokenizer = load_tokenizer(manifest.tokenizer, model_dir)
    log.info(
        "loaded %s %s (%s) on %s as %s (%s)",
        manifest.name,
        manifest.version,
        manifest.backbone,
        target,
        _DTYPE_NAMES[chosen],
        runner,
    )
    return TransformerScorer(
        model,
        tokenizer,
        manifest,
        device=target,
        dtype_name=_DTYPE_NAMES[chosen],
        max_segment_tokens=max_segment_tokens,
        pack_sentences=pack_sentences,
        whole_text=whole_text,
        segment_cache_size=segment_cache_size,
        network=network,
        backend=runner,
    )
