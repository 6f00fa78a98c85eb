"""Model-level studies beside the main comparison: what each speed knob is worth here.

Each returns plain dicts for the report. They run in the benchmark's own process on the
same scorer as the model-only ceiling, after the pipeline phases, so they never overlap
with the worker's measurements.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from models.base import Scorer
from stream.batching import BatchPolicy, estimate_tokens
from stream.bench.model_only import (
    TokenCounter,
    measure,
    sweep_batch_events,
    unsorted_sub_batches,
)

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def batch_sweep(
    scorer: Scorer,
    texts: Sequence[str],
    policy: BatchPolicy,
    count: TokenCounter,
    sizes: Sequence[int],
) -> list[dict[str, Any]]:
    results = sweep_batch_events(scorer, texts, policy, count, sizes)
    return [{"max_events": size, **result.as_dict()} for size, result in results.items()]


def token_cap_sweep(
    scorer: Scorer,
    texts: Sequence[str],
    policy: BatchPolicy,
    count: TokenCounter,
    caps: Sequence[int],
) -> list[dict[str, Any]]:
    """Throughput against `max_tokens` (event cap and timer as in `policy`)."""
    out = []
    for cap in caps:
        capped = BatchPolicy(policy.max_events, cap, policy.max_wait_s, policy.flush_when_idle)
        result = measure(scorer, texts, capped, count, repeats=1)
        out.append({"max_tokens": cap, **result.as_dict()})
    return out


def length_sorting(
    scorer: Scorer, texts: Sequence[str], policy: BatchPolicy, count: TokenCounter
) -> dict[str, Any]:
    """Sub-batches cut from segments sorted by length (shipped) vs in input order."""
    sorted_ = measure(scorer, texts, policy, count, repeats=1)
    with unsorted_sub_batches(scorer):
        unsorted = measure(scorer, texts, policy, count, repeats=1)
    return {
        "sorted_texts_per_s": round(sorted_.texts_per_s, 2),
        "unsorted_texts_per_s": round(unsorted.texts_per_s, 2),
        "gain": round(unsorted.median_s / sorted_.median_s, 3),
    }


def torch_threads(
    scorer: Scorer,
    texts: Sequence[str],
    policy: BatchPolicy,
    count: TokenCounter,
    choices: Sequence[int],
) -> list[dict[str, Any]]:
    """Model-only throughput with each intra-op thread count (restored afterwards)."""
    before = torch.get_num_threads()
    out = []
    try:
        for threads in choices:
            torch.set_num_threads(threads)
            result = measure(scorer, texts, policy, count, repeats=1)
            out.append({"threads": threads, "texts_per_s": round(result.texts_per_s, 2)})
    finally:
        torch.set_num_threads(before)
    return out


def token_counting(scorer: Scorer, texts: Sequence[str]) -> dict[str, Any]:
    """CPU per event of the exact token count (tokenizer + sentence split) vs the estimate."""

    def per_text_ms(count: Callable[[str], int]) -> float:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            for text in texts:
                count(text)
            runs.append((time.perf_counter() - started) * 1000 / len(texts))
        return statistics.median(runs)

    exact = [scorer.count_tokens(text) for text in texts]
    estimate = [estimate_tokens(text) for text in texts]
    return {
        "exact_ms_per_event": round(per_text_ms(scorer.count_tokens), 4),
        "estimate_ms_per_event": round(per_text_ms(estimate_tokens), 5),
        "estimate_over_exact_tokens": round(sum(estimate) / sum(exact), 3),
    }
