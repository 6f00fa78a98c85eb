"""Score a labelled JSONL file with a `Scorer` and compute classification metrics.

Run as ``python -m models.training.evaluation --model models/weights --data <file.jsonl>
--task emotion``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    recall_score,
    roc_auc_score,
)
from tqdm import tqdm

from models.base import Scorer, TextScore
from models.labels import NO_EMOTION
from models.training.data import Example, Task, read_examples, task_labels


def score_examples(
    scorer: Scorer, examples: Sequence[Example], *, batch_size: int = 128, progress: bool = False
) -> list[TextScore]:
    """Scores of the examples' texts, in order, `batch_size` texts per `score` call."""
    scores: list[TextScore] = []
    for first in tqdm(
        range(0, len(examples), batch_size), disable=not progress, desc="score", mininterval=10
    ):
        scores.extend(scorer.score([e.text for e in examples[first : first + batch_size]]))
    return scores


def macro_auc(gold: np.ndarray, probabilities: np.ndarray) -> float | None:
    """Macro one-vs-rest ROC AUC over the classes that have positives and negatives."""
    aucs = [
        roc_auc_score(gold == k, probabilities[:, k])
        for k in range(probabilities.shape[1])
        if 0 < int((gold == k).sum()) < len(gold)
    ]
    return float(np.mean(aucs)) if aucs else None


def classification_metrics(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, macro-recall and a per-class report over `labels`."""
    report = classification_report(
        gold, predicted, labels=list(labels), output_dict=True, zero_division=0
    )
    per_class = {
        label: {k: round(float(v), 4) for k, v in report[label].items()} for label in labels
    }
    return {
        "n": len(gold),
        "accuracy": round(float(accuracy_score(gold, predicted)), 4),
        "macro_f1": round(
            float(f1_score(gold, predicted, labels=list(labels), average="macro", zero_division=0)),
            4,
        ),
        "macro_recall": round(
            float(
                recall_score(gold, predicted, labels=list(labels), average="macro", zero_division=0)
            ),
            4,
        ),
        "per_class": per_class,
    }


def head_metrics(
    examples: Sequence[Example], scores: Sequence[TextScore], task: Task
) -> dict[str, Any]:
    """Metrics of the head's argmax over the rows that carry one of its labels.

    `none` rows (GoEmotions neutral) are left out here: the head has no such class.
    """
    labels = task_labels(task)
    rows = [i for i, e in enumerate(examples) if e.label != NO_EMOTION]
    heads = [scores[i].emotion if task == "emotion" else scores[i].sentiment for i in rows]
    probabilities = np.array([[head.probabilities[k] for k in labels] for head in heads])
    gold = [examples[i].label for i in rows]
    predicted = [labels[int(k)] for k in probabilities.argmax(axis=1)] if rows else []
    present = [label for label in labels if label in set(gold)]
    metrics = classification_metrics(gold, predicted, present)
    gold_index = np.array([labels.index(label) for label in gold])
    auc = macro_auc(gold_index, probabilities) if rows else None
    metrics["roc_auc_ovr_macro"] = None if auc is None else round(auc, 4)
    if rows and len(present) < len(labels):
        # A data set with fewer classes (TweetEval emotion: anger, joy, sadness) is also read
        # as its own k-way task: the argmax over its classes only.
        columns = [labels.index(label) for label in present]
        restricted = [present[int(k)] for k in probabilities[:, columns].argmax(axis=1)]
        metrics["present_classes_only"] = {
            k: v
            for k, v in classification_metrics(gold, restricted, present).items()
            if k != "per_class"
        }
    return metrics


def served_emotion_metrics(
    examples: Sequence[Example], scores: Sequence[TextScore]
) -> dict[str, Any]:
    """Metrics of the emotion label as served (`none` included) over every row."""
    gold = [e.label for e in examples]
    predicted = [s.emotion.label for s in scores]
    labels = [*task_labels("emotion"), NO_EMOTION]
    present = [label for label in labels if label in set(gold)]
    metrics = classification_metrics(gold, predicted, present)
    metrics["none_rate"] = round(predicted.count(NO_EMOTION) / max(1, len(predicted)), 4)
    return metrics


def evaluate(
    scorer: Scorer,
    jsonl_path: Path,
    task: Task,
    *,
    limit: int | None = None,
    batch_size: int = 128,
    progress: bool = False,
) -> dict[str, Any]:
    """Evaluate a scorer on a labelled JSONL file for `task` ("emotion" or "sentiment").

    Accepts the shared data sets' label words (CARER `love` counts as joy; GoEmotions labels
    are grouped, `neutral` rows become `none`). Returns a JSON-ready dict:

    - `n`, `accuracy`, `macro_f1`, `macro_recall`, `roc_auc_ovr_macro` (one-vs-rest, macro
      over the classes present), `per_class` (precision/recall/F1/support): the head's argmax
      over rows with one of its labels;
    - for emotion, `served`: the same for the emitted label with `none` (over every row,
      including `none` rows), plus `none_rate`.
    """
    examples = read_examples(Path(jsonl_path), task, include_none=True, limit=limit)
    if not examples:
        raise ValueError(f"{jsonl_path}: no examples with {task} labels")
    scores = score_examples(scorer, examples, batch_size=batch_size, progress=progress)
    metrics: dict[str, Any] = {"task": task, "data": str(jsonl_path)}
    metrics.update(head_metrics(examples, scores, task))
    if task == "emotion":
        metrics["served"] = served_emotion_metrics(examples, scores)
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry: print the metrics as JSON."""
    from models.loading import load_scorer

    parser = argparse.ArgumentParser(prog="python -m models.training.evaluation")
    parser.add_argument("--model", type=Path, required=True, help="Valence model directory")
    parser.add_argument("--data", type=Path, required=True, help="labelled JSONL file")
    parser.add_argument("--task", choices=("emotion", "sentiment"), required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--pack-sentences", action="store_true")
    parser.add_argument(
        "--no-whole-text",
        dest="whole_text",
        action="store_false",
        help="a text's score is the mean of its sentences even when it fits one window",
    )
    args = parser.parse_args(argv)
    scorer = load_scorer(
        args.model,
        device=args.device,
        precision=args.precision,
        torch_threads=args.threads,
        pack_sentences=args.pack_sentences,
        whole_text=args.whole_text,
    )
    metrics = evaluate(scorer, args.data, args.task, limit=args.limit, progress=True)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
