"""TF-IDF baselines (logistic regression, linear SVM), to put the transformer's numbers in context.

Run as ``python -m models.training.baselines`` (about a minute on two cores); it prints
JSON metrics for
CARER emotion and TweetEval sentiment, trained on the same examples the shipped model used.
The SVM has no probabilities: its AUC ranks by `decision_function`, which is all AUC needs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from models.training.data import DATA_DIR, Task, read_examples, sample_examples, task_labels
from models.training.evaluation import classification_metrics, macro_auc

Classifier = Literal["logreg", "svm"]


def tfidf_baseline(
    train_path: Path,
    validation_path: Path,
    task: Task,
    *,
    max_examples: int | None = None,
    seed: int = 13,
    classifier: Classifier = "logreg",
) -> dict[str, Any]:
    """Fit word 1-2-gram TF-IDF + a balanced linear classifier; metrics on validation."""
    train = sample_examples(train_path, task, max_examples, seed)
    validation = read_examples(validation_path, task, include_none=False)
    labels = task_labels(task)
    model = (
        LogisticRegression(max_iter=2000, C=4.0, class_weight="balanced")
        if classifier == "logreg"
        else LinearSVC(C=0.5, class_weight="balanced")
    )
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), model
    )
    pipeline.fit([e.text for e in train], [e.label_index for e in train])
    texts = [e.text for e in validation]
    # Scores per class: probabilities (logreg) or margins (SVM); argmax and AUC need only ranks.
    probabilities = np.full((len(validation), len(labels)), -np.inf)
    classes = pipeline.classes_
    probabilities[:, classes] = (
        pipeline.predict_proba(texts)
        if classifier == "logreg"
        else pipeline.decision_function(texts)
    )
    predicted = [labels[int(k)] for k in probabilities.argmax(axis=1)]
    gold = [e.label for e in validation]
    metrics = classification_metrics(gold, predicted, [k for k in labels if k in set(gold)])
    auc = macro_auc(np.array([e.label_index for e in validation]), probabilities)
    metrics["roc_auc_ovr_macro"] = None if auc is None else round(auc, 4)
    metrics["train_examples"] = len(train)
    return metrics


def main(argv: Sequence[str] | None = None) -> None:
    """Print both baselines' metrics on CARER and TweetEval validation as JSON."""
    parser = argparse.ArgumentParser(prog="python -m models.training.baselines")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--max-examples-per-task", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    sets: dict[str, tuple[str, Task]] = {
        "carer_validation": ("emotion", "emotion"),
        "tweeteval_sentiment_validation": ("sentiment", "sentiment"),
    }
    results = {
        f"tfidf_{classifier}": {
            key: tfidf_baseline(
                args.data_dir / folder / "train.jsonl",
                args.data_dir / folder / "validation.jsonl",
                task,
                max_examples=args.max_examples_per_task,
                seed=args.seed,
                classifier=classifier,
            )
            for key, (folder, task) in sets.items()
        }
        for classifier in ("logreg", "svm")
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
