"""The model card's numbers: every shipped variant on the validation sets, agreement, speed.

For each variant (model directory x precision) it scores CARER validation, TweetEval
validation and GoEmotions validation (out of domain), computes the metrics of
models/training/evaluation.py, label agreement of int8 with fp32, confusion matrices (PNG), and the
encoder's CPU throughput at batch 32 x 64 tokens (median of interleaved repeats, so machine
noise hits every variant alike). Writes `models/card/metrics.json` and the PNGs.

Run as ``python -m models.training.report`` (several minutes on two cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.base import TextScore
from models.inference import TransformerScorer
from models.loading import load_scorer
from models.training.data import DATA_DIR, REPO_ROOT, Example, Task, read_examples, task_labels
from models.training.evaluation import head_metrics, score_examples, served_emotion_metrics

CARD_DIR = REPO_ROOT / "models" / "card"
SETS: dict[str, tuple[Path, Task]] = {
    "carer_validation": (DATA_DIR / "emotion" / "validation.jsonl", "emotion"),
    "tweeteval_sentiment_validation": (DATA_DIR / "sentiment" / "validation.jsonl", "sentiment"),
    "goemotions_validation": (DATA_DIR / "goemotions" / "validation.jsonl", "emotion"),
}


def _head_labels(scores: Sequence[TextScore], task: Task) -> list[str]:
    heads = [s.emotion if task == "emotion" else s.sentiment for s in scores]
    return [max(h.probabilities, key=h.probabilities.__getitem__) for h in heads]


def confusion_png(
    gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str], title: str, path: Path
) -> list[list[int]]:
    """Save a row-normalised confusion matrix (counts annotated); returns the counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    counts = confusion_matrix(gold, predicted, labels=list(labels))
    shares = counts / np.maximum(1, counts.sum(axis=1, keepdims=True))
    figure, axis = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.0 * len(labels) + 1.5))
    axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("gold")
    axis.set_title(title, fontsize=9)
    for row in range(len(labels)):
        for column in range(len(labels)):
            axis.text(
                column,
                row,
                str(counts[row, column]),
                ha="center",
                va="center",
                color="white" if shares[row, column] > 0.5 else "black",
                fontsize=8,
            )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return counts.tolist()


def evaluate_variant(
    scorer: TransformerScorer, data: dict[str, list[Example]]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Metrics per set, and the labels predicted (head argmax; served emotion for GoEmotions)."""
    metrics: dict[str, Any] = {}
    predictions: dict[str, list[str]] = {}
    for key, examples in data.items():
        task = SETS[key][1]
        scores = score_examples(scorer, examples)
        metrics[key] = head_metrics(examples, scores, task)
        predictions[key] = _head_labels(scores, task)
        if task == "emotion":
            metrics[key]["served"] = served_emotion_metrics(examples, scores)
            predictions[f"{key}:served"] = [s.emotion.label for s in scores]
    return metrics, predictions


def throughput(
    scorers: dict[str, TransformerScorer],
    texts: Sequence[str],
    *,
    repeats: int,
    batch: int = 32,
    width: int = 64,
) -> dict[str, dict[str, float]]:
    """Encoder+heads texts/s at `batch` x `width` tokens, median over interleaved repeats."""
    results: dict[str, list[float]] = {name: [] for name in scorers}
    first = next(iter(scorers.values()))
    encoded = first.tokenizer(
        list(texts[:batch]),
        padding="max_length",
        truncation=True,
        max_length=width,
        return_tensors="pt",
    )
    with torch.inference_mode():
        for scorer in scorers.values():  # warm-up
            scorer.model(encoded["input_ids"], encoded["attention_mask"])
        for _ in range(repeats):
            for name, scorer in scorers.items():
                started = time.perf_counter()
                scorer.model(encoded["input_ids"], encoded["attention_mask"])
                results[name].append(batch / (time.perf_counter() - started))
    return {
        name: {"texts_per_s_median": round(statistics.median(v), 1), "repeats": len(v)}
        for name, v in results.items()
    }


def agreement(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, float]:
    """Share of identical labels, per prediction list."""
    return {
        key: round(float(np.mean([x == y for x, y in zip(a[key], b[key], strict=True)])), 4)
        for key in a
    }


def _variant_results(
    name: str, path: Path, precision: str, data: dict[str, list[Example]], cache_dir: Path
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Metrics and predictions of one variant, cached under `cache_dir` (runs/ is scratch)."""
    cache = cache_dir / f"{name}.json"
    if cache.is_file():
        payload = json.loads(cache.read_text())
        return payload["metrics"], payload["predictions"]
    scorer = load_scorer(path, device="cpu", precision=precision)
    assert isinstance(scorer, TransformerScorer)
    started = time.monotonic()
    metrics, predictions = evaluate_variant(scorer, data)
    metrics["eval_seconds"] = round(time.monotonic() - started, 1)
    metrics["none_threshold"] = scorer.none_threshold
    metrics["model"] = f"{scorer.info.name} {scorer.info.version}"
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"metrics": metrics, "predictions": predictions}))
    return metrics, predictions


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models.training.report")
    parser.add_argument("--teacher", type=Path, default=REPO_ROOT / "models" / "weights")
    parser.add_argument("--student", type=Path, default=REPO_ROOT / "models" / "weights-student")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--limit", type=int, default=None, help="rows per set (smoke runs)")
    parser.add_argument("--only", default=None, help="comma-separated variants to score")
    parser.add_argument(
        "--score-only", action="store_true", help="score (cache) the variants, then stop"
    )
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated sets to score")
    parser.add_argument("--cache-dir", type=Path, default=REPO_ROOT / "runs" / "report")
    parser.add_argument("--output", type=Path, default=CARD_DIR / "metrics.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = {
        key: read_examples(path, task, include_none=True, limit=args.limit)
        for key, (path, task) in SETS.items()
        if key in args.sets.split(",")
    }
    variants = {
        f"{role}-{precision}": (path, precision)
        for role, path in (("teacher", args.teacher), ("student", args.student))
        for precision in ("fp32", "int8")
    }
    chosen = args.only.split(",") if args.only else list(variants)
    report: dict[str, Any] = {"threads": args.threads, "torch": torch.__version__, "variants": {}}
    predictions: dict[str, dict[str, list[str]]] = {}
    for name in chosen:
        path, precision = variants[name]
        metrics, predictions[name] = _variant_results(name, path, precision, data, args.cache_dir)
        report["variants"][name] = metrics
        summary = {k: v.get("accuracy") for k, v in metrics.items() if isinstance(v, dict)}
        print(name, summary, flush=True)
    if args.score_only:
        return
    pairs = {
        "int8_agreement_with_fp32:teacher": ("teacher-fp32", "teacher-int8"),
        "int8_agreement_with_fp32:student": ("student-fp32", "student-int8"),
        "student_agreement_with_teacher": ("teacher-fp32", "student-fp32"),
    }
    for key, (a, b) in pairs.items():
        if a in predictions and b in predictions:
            report[key] = agreement(predictions[a], predictions[b])
    scorers: dict[str, TransformerScorer] = {}
    for name, (path, precision) in variants.items():
        scorer = load_scorer(path, device="cpu", precision=precision)
        assert isinstance(scorer, TransformerScorer)
        scorers[name] = scorer
    texts = [e.text for e in data["carer_validation"]]
    report["throughput_batch32_seq64"] = throughput(scorers, texts, repeats=args.repeats)
    for name in ("teacher-fp32", "student-fp32", "student-int8"):
        if name not in predictions:
            continue
        for key in ("carer_validation", "tweeteval_sentiment_validation"):
            task = SETS[key][1]
            rows = [i for i, e in enumerate(data[key]) if e.label != "none"]
            report["variants"][name][key]["confusion"] = confusion_png(
                [data[key][i].label for i in rows],
                [predictions[name][key][i] for i in rows],
                task_labels(task),
                f"{name} on {key}",
                CARD_DIR / f"confusion-{name}-{key.split('_')[0]}.png",
            )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["throughput_batch32_seq64"]))
    print(json.dumps({k: v for k, v in report.items() if "agreement" in k}))


if __name__ == "__main__":
    main()
