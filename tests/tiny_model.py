"""Tiny randomly initialised Valence models, for tests and smoke runs that need no real weights.

The model is a small DistilBERT (default dim 32, 2 layers, 2 heads) on MiniLM's tokenizer, so
it exercises the DistilBERT code path (no token type ids) and loads in well under a second.
Its scores are meaningless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.artifact import ModelManifest, save_tensors
from models.backbone import (
    CONFIG_PREFIX,
    build_random_distilbert,
    random_distilbert_config,
    tokenizer_reference,
)
from models.network import SentimentEmotionModel

RANDOM_DISTILBERT = f"{CONFIG_PREFIX}distilbert"


def write_random_model(
    model_dir: Path,
    *,
    seed: int = 0,
    config: dict[str, Any] | None = None,
    none_threshold: float = 0.3,
    name: str = "valence-random-distilbert",
    emotion_none_class: bool = False,
) -> Path:
    """Write a loadable Valence model directory with random weights; returns `model_dir`.
    `emotion_none_class` gives the emotion head its sixth, `none` output."""
    backbone_config = config or random_distilbert_config()
    torch.manual_seed(seed)
    model = SentimentEmotionModel(
        build_random_distilbert(backbone_config), n_emotion=5 + int(emotion_none_class)
    )
    save_tensors(model.state_dict(), model_dir)
    ModelManifest(
        name=name,
        version="0.0.0-random",
        backbone=RANDOM_DISTILBERT,
        backbone_config=backbone_config,
        tokenizer=tokenizer_reference(RANDOM_DISTILBERT),
        stored_params="all",
        none_threshold=none_threshold,
        emotion_none_class=emotion_none_class,
    ).write(model_dir)
    return model_dir
