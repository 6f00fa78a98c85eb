"""The ceiling: the scorer alone, on the batches the worker's batch policy would form.

At saturation the worker's batcher always has a full queue, so its batches are the input
in arrival order cut at `max_events` events or `max_tokens` tokens; `plan_batches` cuts
them with the worker's own `BatchAccumulator`, and only `Scorer.score` is timed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from models.base import Scorer, TextScore
from stream.batching import BatchAccumulator, BatchPolicy
from stream.bench.workload import Revision

TokenCounter = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class Throughput:
    texts: int
    tokens: int
    batches: int
    seconds: list[float] = field(default_factory=list)  # one per repeat

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.median_s

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "texts_per_s": round(self.texts_per_s, 2),
            "tokens_per_s": round(self.tokens / self.median_s, 1),
        }


def plan_batches(tokens: Sequence[int], policy: BatchPolicy) -> list[list[int]]:
    """Indices of each batch a never-idle batcher would form, in arrival order."""
    acc: BatchAccumulator[int] = BatchAccumulator(policy, clock=lambda: 0.0)
    batches: list[list[int]] = []
    for index, count in enumerate(tokens):
        if not acc.fits(count):
            batches.append(acc.drain().items)
        acc.add(index, count)
        if acc.is_full():
            batches.append(acc.drain().items)
    if len(acc):
        batches.append(acc.drain().items)
    return batches


def run_batches(
    scorer: Scorer, texts: Sequence[str], batches: Sequence[Sequence[int]]
) -> tuple[float, list[TextScore]]:
    """Seconds spent in `scorer.score` over all batches, and the scores in input order."""
    results: list[TextScore | None] = [None] * len(texts)
    spent = 0.0
    for batch in batches:
        chunk = [texts[i] for i in batch]
        started = time.perf_counter()
        scores = scorer.score(chunk)
        spent += time.perf_counter() - started
        for index, score in zip(batch, scores, strict=True):
            results[index] = score
    return spent, [score for score in results if score is not None]


def measure(
    scorer: Scorer,
    texts: Sequence[str],
    policy: BatchPolicy,
    count_tokens: TokenCounter,
    repeats: int = 3,
    before_each: Callable[[], None] | None = None,
) -> Throughput:
    """Model-only throughput of `texts` under `policy`; `before_each` resets state (a cache)."""
    tokens = [count_tokens(text) for text in texts]
    batches = plan_batches(tokens, policy)
    seconds = []
    for _ in range(repeats):
        if before_each is not None:
            before_each()
        seconds.append(run_batches(scorer, texts, batches)[0])
    return Throughput(len(texts), sum(tokens), len(batches), seconds)


def one_by_one(scorer: Scorer, texts: Sequence[str], repeats: int = 1) -> Throughput:
    """One text per model call: the naive consumer's model cost without Kafka."""
    seconds = [run_batches(scorer, texts, [[i] for i in range(len(texts))])[0]]
    for _ in range(repeats - 1):
        seconds.append(run_batches(scorer, texts, [[i] for i in range(len(texts))])[0])
    return Throughput(len(texts), 0, len(texts), seconds)


def sweep_batch_events(
    scorer: Scorer,
    texts: Sequence[str],
    policy: BatchPolicy,
    count_tokens: TokenCounter,
    sizes: Sequence[int],
    repeats: int = 1,
) -> dict[int, Throughput]:
    """Throughput against `max_events` (token cap and timer as in `policy`)."""
    return {
        size: measure(
            scorer,
            texts,
            BatchPolicy(size, policy.max_tokens, policy.max_wait_s, policy.flush_when_idle),
            count_tokens,
            repeats,
        )
        for size in sizes
    }


# --- ablations --------------------------------------------------------------------------------


@contextmanager
def unsorted_sub_batches(scorer: Any) -> Iterator[None]:
    """Within this block a `TransformerScorer` cuts sub-batches in input order (no length
    sort), to measure what the sort saves in padding."""

    def in_order(lengths: Sequence[int]) -> Iterator[list[int]]:
        batch: list[int] = []
        width = 0
        for index, length in enumerate(lengths):
            width = max(width, length)
            if batch and (
                len(batch) >= scorer.max_batch_segments
                or (len(batch) + 1) * width > scorer.max_batch_tokens
            ):
                yield batch
                batch, width = [], length
            batch.append(index)
        if batch:
            yield batch

    scorer._sub_batches = in_order
    try:
        yield
    finally:
        del scorer._sub_batches  # the class's method shows through again


def _probabilities(score: TextScore) -> np.ndarray:
    return np.array(
        [*score.sentiment.probabilities.values(), *score.emotion.probabilities.values()]
    )


def compare_scores(reference: Sequence[TextScore], other: Sequence[TextScore]) -> dict[str, float]:
    """Label agreement (both heads, `none` included) and the largest probability difference."""
    sentiment = np.mean(
        [a.sentiment.label == b.sentiment.label for a, b in zip(reference, other, strict=True)]
    )
    emotion = np.mean(
        [a.emotion.label == b.emotion.label for a, b in zip(reference, other, strict=True)]
    )
    diffs = [
        float(np.max(np.abs(_probabilities(a) - _probabilities(b))))
        for a, b in zip(reference, other, strict=True)
    ]
    return {
        "texts": len(reference),
        "sentiment_label_agreement": round(float(sentiment), 4),
        "emotion_label_agreement": round(float(emotion), 4),
        "max_prob_diff": round(max(diffs), 6),
        "mean_max_prob_diff": round(float(np.mean(diffs)), 6),
    }


def cache_replay(
    scorer: Any,
    revisions: Sequence[Revision],
    policy: BatchPolicy,
    count_tokens: TokenCounter,
    repeats: int = 3,
) -> dict[str, Any]:
    """Editing-session replay with the scorer's segment cache off, then on (fresh each
    repeat): throughput gain, hit rate, and that cached scores equal uncached ones."""
    cache = getattr(scorer, "segment_cache", None)
    if cache is None:
        return {"available": False}
    texts = [rev.text for rev in revisions]
    batches = plan_batches([count_tokens(text) for text in texts], policy)
    off, on = [], []
    cached_scores: list[TextScore] = []
    uncached_scores: list[TextScore] = []
    try:
        for _ in range(repeats):
            scorer.segment_cache = None
            spent, uncached_scores = run_batches(scorer, texts, batches)
            off.append(spent)
            cache.clear()
            scorer.segment_cache = cache
            spent, cached_scores = run_batches(scorer, texts, batches)
            on.append(spent)
    finally:
        scorer.segment_cache = cache
    stats = cache.stats()
    by_kind: dict[str, int] = {}
    for rev in revisions:
        by_kind[rev.kind] = by_kind.get(rev.kind, 0) + 1
    return {
        "available": True,
        "events": len(texts),
        "sessions": len({rev.session for rev in revisions}),
        "events_by_kind": by_kind,
        "batches": len(batches),
        "cache_entries": stats.entries,
        "cache_max_entries": stats.max_entries,
        "hit_rate": round(stats.hit_rate, 4),
        "seconds_off": off,
        "seconds_on": on,
        "texts_per_s_off": round(len(texts) / statistics.median(off), 2),
        "texts_per_s_on": round(len(texts) / statistics.median(on), 2),
        "gain": round(statistics.median(off) / statistics.median(on), 3),
        "cached_vs_uncached": compare_scores(uncached_scores, cached_scores),
    }
