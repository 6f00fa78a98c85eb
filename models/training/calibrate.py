"""After training: tune the `none` threshold and the sentiment prior correction, and record
validation metrics in the manifest.

Neither is tuned on the validation files reported in the model card:

- the `none` threshold is chosen on emotion data that contains emotion-free text (a seeded
  4,000-row sample of GoEmotions train, grouped to Valence's five emotions, `neutral` rows as
  `none`; training leaves that sample out) and maximises the macro-F1 over the six served
  labels (five emotions + `none`). The intensity it thresholds is the served one: with a
  `none` class of the emotion head, max(P(emotion | not none)) x (1 - P(none));
- the sentiment log-prior offsets (`sentiment_log_offsets`) are chosen on TweetEval train
  rows the trainer's seeded sample left out, and maximise macro-recall (TweetEval's metric):
  the training mix and class weights leave the head's priors off balance, and a per-class
  offset on the log-probabilities is the smallest correction that rebalances them.

Run `python -m models.training.calibrate --model DIR` (or `valence calibrate`) to recalibrate a
trained model in place; training runs the same steps when it finishes.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import f1_score

from models.artifact import ModelManifest
from models.base import TextScore
from models.inference import TransformerScorer
from models.labels import NO_EMOTION
from models.loading import load_scorer
from models.training.data import DATA_DIR, Example, read_examples, sample_examples, task_labels
from models.training.evaluation import evaluate, score_examples

if TYPE_CHECKING:
    from models.training.train import TrainConfig


@dataclass
class CalibrationConfig:
    """What calibration reads of a training run's settings (`TrainConfig` has the same
    fields), so recalibrating a model needs no trainer."""

    output_dir: Path
    seed: int = 13
    max_examples_per_task: int | None = 16000
    sentiment_train: Path = DATA_DIR / "sentiment" / "train.jsonl"
    sentiment_calibration_examples: int = 4000
    none_calibration: Path | None = DATA_DIR / "goemotions" / "train.jsonl"
    none_calibration_examples: int = 4000
    emotion_validation: Path | None = DATA_DIR / "emotion" / "validation.jsonl"
    sentiment_validation: Path | None = DATA_DIR / "sentiment" / "validation.jsonl"
    goemotions_validation: Path | None = DATA_DIR / "goemotions" / "validation.jsonl"
    tweeteval_emotion_validation: Path | None = DATA_DIR / "tweeteval-emotion" / "validation.jsonl"
    torch_threads: int | None = None
    progress: bool = False


log = logging.getLogger(__name__)

THRESHOLD_GRID = np.round(np.arange(0.0, 1.0001, 0.01), 2)
OFFSET_GRID = np.round(np.arange(-1.0, 1.0001, 0.05), 2)


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


def macro_recall(gold: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    present = [k for k in range(classes) if (gold == k).any()]
    return float(np.mean([(predicted[gold == k] == k).mean() for k in present]))


def tune_sentiment_offsets(
    probabilities: np.ndarray, gold: np.ndarray, labels: Sequence[str]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Log-prior offsets (neutral fixed at 0) on `OFFSET_GRID` with the best macro-recall;
    among equals, the smallest correction."""
    log_p = np.log(np.clip(probabilities, 1e-12, None))
    free = [k for k, label in enumerate(labels) if label != "neutral"]
    best: tuple[float, float, tuple[float, ...]] | None = None
    for values in np.array(np.meshgrid(*[OFFSET_GRID] * len(free))).T.reshape(-1, len(free)):
        offsets = np.zeros(len(labels))
        offsets[free] = values
        recall = macro_recall(gold, np.argmax(log_p + offsets, axis=1), len(labels))
        key = (round(recall, 6), -float(np.abs(values).sum()))
        if best is None or key > best[:2]:
            best = (*key, tuple(float(v) for v in offsets))
    assert best is not None
    chosen = {label: round(best[2][k], 2) for k, label in enumerate(labels)}
    report = {
        "objective": "macro-recall over negative, neutral, positive",
        "n": len(gold),
        "offsets": chosen,
        "macro_recall_with_offsets": round(best[0], 4),
        "macro_recall_without": round(macro_recall(gold, np.argmax(log_p, axis=1), len(labels)), 4),
    }
    return chosen, report


def heldout_sentiment_examples(
    path: Path, train_limit: int | None, seed: int, limit: int
) -> list[Example]:
    """Up to `limit` rows of `path` whose texts the trainer's seeded sample did not take."""
    seen = {e.text for e in sample_examples(path, "sentiment", train_limit, seed)}
    rest = [e for e in read_examples(path, "sentiment") if e.text not in seen]
    if len(rest) > limit:
        rest = random.Random(f"{seed}:sentiment-calibration").sample(rest, limit)
    return rest


def calibrate_sentiment(
    scorer: TransformerScorer, examples: Sequence[Example], *, progress: bool = False
) -> tuple[dict[str, float], dict[str, Any]]:
    """Tune the offsets on `examples`, scored without any correction."""
    labels = list(scorer.sentiment_labels)
    saved = scorer.sentiment_factors
    scorer.sentiment_factors = np.ones(len(labels))
    try:
        scores = score_examples(scorer, examples, progress=progress)
    finally:
        scorer.sentiment_factors = saved
    probabilities = np.array([[s.sentiment.probabilities[k] for k in labels] for s in scores])
    gold = np.array([labels.index(e.label) for e in examples])
    return tune_sentiment_offsets(probabilities, gold, labels)


def none_calibration_examples(path: Path, limit: int, seed: int) -> list[Example]:
    """The seeded random subset of `limit` emotion rows of `path` (neutral rows included)
    that tunes the `none` threshold; training leaves these rows out."""
    examples = read_examples(path, "emotion", include_none=True)
    if len(examples) > limit:
        examples = random.Random(f"{seed}:none").sample(examples, limit)
    return examples


def calibrate(
    scorer: TransformerScorer, path: Path, limit: int, seed: int, *, progress: bool = False
) -> tuple[float, dict[str, Any]]:
    """Tune the threshold on a seeded random subset of `limit` rows of `path`."""
    examples = none_calibration_examples(path, limit, seed)
    scores = score_examples(scorer, examples, progress=progress)
    threshold, report = tune_none_threshold(scores, [e.label for e in examples])
    report["data"] = path.name
    return threshold, report


def apply_sentiment_offsets(
    manifest: ModelManifest, scorer: TransformerScorer, offsets: dict[str, float]
) -> None:
    manifest.sentiment_log_offsets = offsets
    scorer.sentiment_factors = np.exp([offsets[k] for k in scorer.sentiment_labels])


def validation_metrics(
    scorer: TransformerScorer, config: TrainConfig | CalibrationConfig
) -> dict[str, Any]:
    """The metrics of every validation set the config names."""
    validations = {
        "carer_validation": (config.emotion_validation, "emotion"),
        "tweeteval_sentiment_validation": (config.sentiment_validation, "sentiment"),
        "goemotions_validation": (config.goemotions_validation, "emotion"),
        "tweeteval_emotion_validation": (config.tweeteval_emotion_validation, "emotion"),
    }
    metrics: dict[str, Any] = {}
    for key, (path, task) in validations.items():
        if path is not None:
            metrics[key] = evaluate(scorer, path, task, progress=config.progress)  # type: ignore[arg-type]
            metrics[key]["data"] = path.name
            log.info("%s: %s", key, {k: metrics[key][k] for k in ("accuracy", "macro_f1")})
    return metrics


def tune(
    scorer: TransformerScorer, manifest: ModelManifest, config: TrainConfig | CalibrationConfig
) -> dict:
    """Tune the sentiment offsets, then the `none` threshold (it reads P(neutral) as served,
    after the offsets), into `manifest` and `scorer`; returns their reports."""
    reports: dict[str, Any] = {}
    if config.sentiment_calibration_examples > 0:
        examples = heldout_sentiment_examples(
            config.sentiment_train,
            config.max_examples_per_task,
            config.seed,
            config.sentiment_calibration_examples,
        )
        if examples:
            offsets, report = calibrate_sentiment(scorer, examples, progress=config.progress)
            report["data"] = f"{config.sentiment_train.name} (rows not trained on)"
            apply_sentiment_offsets(manifest, scorer, offsets)
            reports["sentiment_calibration"] = report
            log.info("sentiment offsets %s (%s)", offsets, report)
        else:
            log.warning("no sentiment rows left out of training: no prior correction")
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
        reports["none_calibration"] = report
        log.info("none threshold %.2f (%s)", threshold, report)
    return reports


def finalize_model(config: TrainConfig | CalibrationConfig, train_started: float) -> ModelManifest:
    """Tune the offsets and `none_threshold`, and write validation metrics into the saved
    model's manifest."""
    model_dir = config.output_dir
    manifest = ModelManifest.read(model_dir)
    scorer = load_scorer(model_dir, torch_threads=config.torch_threads)
    assert isinstance(scorer, TransformerScorer)
    metrics = tune(scorer, manifest, config)
    metrics.update(validation_metrics(scorer, config))
    manifest.metrics = metrics
    manifest.training["wall_seconds"] = round(time.monotonic() - train_started, 1)
    manifest.training["scoring_device"] = scorer.info.device
    manifest.write(model_dir)
    return manifest


def recalibrate(model_dir: Path, *, examples: int) -> None:
    """Tune a trained model's offsets and threshold again, with the training run's data
    settings, and re-measure the validation sets with the scorer as it now serves."""
    manifest = ModelManifest.read(model_dir)
    trained = manifest.training.get("config", {})
    config = CalibrationConfig(
        output_dir=model_dir,
        seed=int(trained.get("seed", 13)),
        max_examples_per_task=trained.get("max_examples_per_task", 16000),
        none_calibration_examples=int(trained.get("none_calibration_examples", 4000)),
        sentiment_calibration_examples=examples,
    )
    scorer = load_scorer(model_dir)
    assert isinstance(scorer, TransformerScorer)
    manifest.metrics.update(tune(scorer, manifest, config))
    manifest.metrics.update(validation_metrics(scorer, config))
    manifest.write(model_dir)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(
        prog="python -m models.training.calibrate", description=__doc__
    )
    parser.add_argument("--model", type=Path, required=True, help="Valence model directory")
    parser.add_argument("--examples", type=int, default=4000, help="held-out sentiment rows")
    args = parser.parse_args(argv)
    recalibrate(args.model, examples=args.examples)


if __name__ == "__main__":
    main()
