"""The per-segment cache: bounded LRU, honest counters, exact keys, and a scorer that only
runs the segments it has not seen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from models.inference import TransformerScorer
from models.loading import load_scorer
from models.segment_cache import SegmentCache, cached_forward
from tests.tiny_model import write_random_model


def test_lru_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache: SegmentCache[int] = SegmentCache(2, "m:1")
    a, b, c = (cache.key(text, [1]) for text in "abc")
    cache.put(a, 1)
    cache.put(b, 2)
    assert cache.get(a) == 1  # a is now the most recent
    cache.put(c, 3)
    assert len(cache) == 2
    assert cache.get(b) is None
    assert cache.get(a) == 1 and cache.get(c) == 3
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions) == (3, 1, 1)
    assert stats.hit_rate == pytest.approx(0.75)


def test_keys_separate_models_texts_and_token_ids() -> None:
    old, new = (
        SegmentCache[int](4, "valence:1.0.0:float32"),
        SegmentCache[int](4, "valence:1.1.0:float32"),
    )
    assert old.key("Hello.", [7, 8]) == old.key("Hello.", [7, 8])
    assert old.key("Hello.", [7, 8]) != new.key("Hello.", [7, 8])
    assert old.key("Hello.", [7, 8]) != old.key("Hello!", [7, 8])
    assert old.key("Hello.", [7, 8]) != old.key("Hello.", [7, 9])


def test_lookup_counts_repeats_within_a_call_as_hits() -> None:
    cache: SegmentCache[int] = SegmentCache(8, "m")
    x, y = cache.key("x", []), cache.key("y", [])
    cache.put(x, 1)
    found, missing = cache.lookup([x, y, y, x])
    assert found == {x: 1} and missing == [y]
    assert (cache.hits, cache.misses) == (3, 1)


def test_invalid_size_is_rejected() -> None:
    with pytest.raises(ValueError):
        SegmentCache(0, "m")


def _fake_forward(calls: list[int]):
    def forward(inputs: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        calls.append(len(inputs))
        sums = np.array([float(sum(ids)) for ids in inputs])
        return np.stack([sums, sums + 1, sums + 2], 1), np.stack([sums * 2, -sums], 1)

    return forward


def test_cached_forward_runs_only_distinct_misses_and_matches_forward() -> None:
    cache: SegmentCache[np.ndarray] = SegmentCache(16, "m")
    calls: list[int] = []
    forward = _fake_forward(calls)
    spans, inputs = ["a", "b", "a"], [[1], [2], [1]]
    sentiment, emotion = cached_forward(cache, spans, inputs, forward, 3)
    expected = forward(inputs)
    np.testing.assert_array_equal(sentiment, expected[0])
    np.testing.assert_array_equal(emotion, expected[1])
    assert calls[0] == 2  # "a" ran once
    calls.clear()
    cached_forward(cache, ["a", "c"], [[1], [3]], forward, 3)
    assert calls == [1]
    cached_forward(cache, ["a", "b", "c"], [[1], [2], [3]], forward, 3)
    assert calls == [1]  # nothing new
    assert cached_forward(cache, [], [], forward, 3)[0].shape == (0, 3)


def test_cached_rows_do_not_keep_the_batch_alive() -> None:
    cache: SegmentCache[np.ndarray] = SegmentCache(16, "m")
    cached_forward(cache, ["a", "b"], [[1], [2]], _fake_forward([]), 3)
    for value in cache._entries.values():
        assert value.base is None and value.shape == (5,)


# --- the scorer with its cache --------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_model(tmp_path_factory.mktemp("random-model"))


def _scorer(model_dir: Path, size: int) -> TransformerScorer:
    scorer = load_scorer(model_dir, device="cpu", segment_cache_size=size)
    assert isinstance(scorer, TransformerScorer)
    return scorer


DOC = (
    "The launch went well. Everyone cheered at the end.\n\nThen the servers fell over. "
    "We stayed until midnight fixing them. Nobody was happy about that."
)


def test_scorer_cache_is_off_at_zero_and_keyed_by_model(model_dir: Path) -> None:
    assert _scorer(model_dir, 0).segment_cache is None
    cache = _scorer(model_dir, 100).segment_cache
    assert cache is not None and cache.max_entries == 100
    assert "0.0.0-random" in cache.model_key


def test_cached_scores_equal_uncached_scores(model_dir: Path) -> None:
    plain, cached = _scorer(model_dir, 0), _scorer(model_dir, 1000)
    texts = [DOC, "Short one.", DOC + " One more sentence.", ""]
    for _ in range(2):  # a cold cache, then a warm one
        for a, b in zip(plain.score(texts), cached.score(texts), strict=True):
            assert a.sentiment.label == b.sentiment.label
            assert a.emotion.label == b.emotion.label
            assert [(s.start, s.end) for s in a.segments] == [(s.start, s.end) for s in b.segments]
            for key, value in a.sentiment.probabilities.items():
                assert b.sentiment.probabilities[key] == pytest.approx(value, abs=1e-5)
            for key, value in a.emotion.probabilities.items():
                assert b.emotion.probabilities[key] == pytest.approx(value, abs=1e-5)


def test_a_revision_that_changes_one_sentence_runs_one_segment(model_dir: Path) -> None:
    scorer = _scorer(model_dir, 1000)
    ran: list[int] = []
    forward = scorer._forward

    def counting(inputs: Sequence[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        ran.append(len(inputs))
        return forward(inputs)

    scorer._forward = counting  # type: ignore[method-assign]
    # DOC fits one window, so it is also scored whole (its own label): 5 sentences + 1.
    scorer.score([DOC])
    assert ran == [6]
    scorer.score([DOC.replace("fell over", "crashed")])
    assert ran == [6, 2]  # the changed sentence and the changed whole text
    assert scorer.segment_cache is not None
    assert scorer.segment_cache.stats().hits == 4
    # A document longer than a window has no whole-text segment: one sentence changed, one run.
    long_doc = " ".join(f"Step {i} of the plan went well." for i in range(40))
    ran.clear()
    scorer.score([long_doc])
    (first,) = ran
    scorer.score([long_doc.replace("Step 7 of", "Step seven of")])
    assert first == 40 and ran == [first, 1]
