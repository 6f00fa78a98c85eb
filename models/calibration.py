"""After training: tune the `none` threshold and record validation metrics in the manifest.

The threshold is chosen on emotion data that contains emotion-free text (GoEmotions train,
grouped to Valence's five emotions, `neutral` rows as `none`), never on the validation files
reported in the model card. It maximises the macro-F1 over the six served labels
(five emotions + `none`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import f1_score

from models.artifact import ModelManifest
from models.base import TextScore
from models.data import read_examples, task_labels
from models.evaluation import evaluate, score_examples
from models.inference import TransformerScorer
from models.labels import NO_EMOTION
from models.loading import load_scorer

if TYPE_CHECKING:
    from models.training import TrainConfig

log = logging.getLogger(__name__)

THRESHOLD_GRID = np.round(np.arange(0.0, 1.0001, 0.01), 2)


def served_labels(scores: Sequence[TextScore], threshold: float) -> list[str]:
    """The emotion label each score would get under `threshold`."""
    labels = task_labels("emotion")
    result = []
    for score in scores:
        best = max(labels, key=score.emotion.probabilities.__getitem__)
        result.append(best if score.emotion_intensity >= threshold else NO_EMOTION)
    return result


def tune_none_threshold(
    scores: Sequence[TextScore], gold: Sequence[str]
) -> tuple[float, dict[str, Any]]:
    """The grid threshold with the best six-way macro-F1 (ties: the lowest threshold)."""
    labels = [*task_labels("emotion"), NO_EMOTION]
    results = [
        float(
            f1_score(
                gold, served_labels(scores, t), labels=labels, average="macro", zero_division=0
            )
        )
        for t in THRESHOLD_GRID
    ]
    best = int(np.argmax(results))
    report = {
        "objective": "macro-F1 over joy, surprise, anger, fear, sadness, none",
        "n": len(gold),
        "none_share": round(list(gold).count(NO_EMOTION) / max(1, len(gold)), 4),
        "threshold": float(THRESHOLD_GRID[best]),
        "macro_f1_at_threshold": round(results[best], 4),
        "macro_f1_at_0": round(results[0], 4),
    }
    return float(THRESHOLD_GRID[best]), report


def calibrate(
    scorer: TransformerScorer, path: Path, limit: int, seed: int, *, progress: bool = False
) -> tuple[float, dict[str, Any]]:
    """Tune the threshold on a seeded random subset of `limit` rows of `path`."""
    examples = read_examples(path, "emotion", include_none=True)
    if len(examples) > limit:
        examples = random.Random(f"{seed}:none").sample(examples, limit)
    scores = score_examples(scorer, examples, progress=progress)
    threshold, report = tune_none_threshold(scores, [e.label for e in examples])
    report["data"] = path.name
    return threshold, report


def finalize_model(config: TrainConfig, train_started: float) -> ModelManifest:
    """Tune `none_threshold` and write validation metrics into the saved model's manifest."""
    model_dir = config.output_dir
    manifest = ModelManifest.read(model_dir)
    scorer = load_scorer(model_dir, torch_threads=config.torch_threads)
    assert isinstance(scorer, TransformerScorer)
    metrics: dict[str, Any] = {}
    if config.none_calibration is not None:
        threshold, report = calibrate(
            scorer,
            config.none_calibration,
            config.none_calibration_examples,
            config.seed,
            progress=config.progress,
        )
        manifest.none_threshold = threshold
        scorer.none_threshold = threshold
        metrics["none_calibration"] = report
        log.info("none threshold %.2f (%s)", threshold, report)
    validations = {
        "carer_validation": (config.emotion_validation, "emotion"),
        "tweeteval_sentiment_validation": (config.sentiment_validation, "sentiment"),
        "goemotions_validation": (config.goemotions_validation, "emotion"),
    }
    for key, (path, task) in validations.items():
        if path is not None:
            metrics[key] = evaluate(scorer, path, task, progress=config.progress)  # type: ignore[arg-type]
            metrics[key]["data"] = path.name
            log.info("%s: %s", key, {k: metrics[key][k] for k in ("accuracy", "macro_f1")})
    manifest.metrics = metrics
    manifest.training["wall_seconds"] = round(time.monotonic() - train_started, 1)
    manifest.training["scoring_device"] = scorer.info.device
    manifest.write(model_dir)
    return manifest
