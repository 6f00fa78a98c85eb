"""A bounded LRU cache of per-segment model outputs, so resent text is not scored again.

Editors resend the whole text after every few keystrokes: all sentences but the one being
typed are unchanged. `TransformerScorer` looks every segment up here before the model call
and runs only the misses, so a revision that changes one sentence costs about one
sentence of inference.

Keys are ``(model key, sha1(segment text + its token ids))``. The model key names the model
name, version and precision, so a cache can never serve one model's scores for another's;
the token ids make the key exactly the model's input. Content addressing also makes the
cache safe across consumer-group rebalances: nothing in it depends on which partitions or
documents this worker owns. Memory is bounded by `max_entries` (a few hundred bytes each).
"""

from __future__ import annotations

import hashlib
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

Value = TypeVar("Value")
Key = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class CacheStats:
    entries: int
    max_entries: int
    hits: int
    misses: int
    evictions: int

    @property
    def hit_rate(self) -> float:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else 0.0


class SegmentCache(Generic[Value]):
    """LRU map from a segment's key to its model output.

    A lock guards every operation: the scorer calls it from its one model thread, while
    metrics or a benchmark may read the counters from another.
    """

    def __init__(self, max_entries: int, model_key: str):
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1 (use no cache to disable caching)")
        self.max_entries = max_entries
        self.model_key = model_key
        self._entries: OrderedDict[Key, Value] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def key(self, text: str, token_ids: Sequence[int]) -> Key:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass"), usedforsecurity=False)
        digest.update(b"\x00")
        digest.update(array("i", token_ids).tobytes())
        return (self.model_key, digest.digest())

    def get(self, key: Key) -> Value | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Key, value: Value) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self.evictions += 1

    def lookup(self, keys: Sequence[Key]) -> tuple[dict[Key, Value], list[Key]]:
        """Values found for `keys`, and the distinct keys not found (first-seen order).

        Counts every occurrence served without the model as a hit (a key repeated within
        one call runs once), and each distinct missing key as one miss.
        """
        found: dict[Key, Value] = {}
        missing: dict[Key, None] = {}
        with self._lock:
            for key in keys:
                if key in found or key in missing:
                    self.hits += 1
                    continue
                value = self._entries.get(key)
                if value is None:
                    missing[key] = None
                    self.misses += 1
                else:
                    self._entries.move_to_end(key)
                    found[key] = value
                    self.hits += 1
        return found, list(missing)

    def store(self, values: dict[Key, Value]) -> None:
        for key, value in values.items():
            self.put(key, value)

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                len(self._entries), self.max_entries, self.hits, self.misses, self.evictions
            )

    def clear(self) -> None:
        """Drop every entry and zero the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = self.evictions = 0


Probabilities = tuple[np.ndarray, np.ndarray]  # (sentiment, emotion), one row per input


def cached_forward(
    cache: SegmentCache[np.ndarray],
    spans: Sequence[str],
    inputs: Sequence[list[int]],
    forward: Callable[[Sequence[list[int]]], Probabilities],
    sentiment_width: int,
) -> Probabilities:
    """`forward(inputs)` through the cache: only distinct segments not cached reach the model.

    `spans[i]` is the text of the segment whose model input is `inputs[i]`. A cached value
    is both heads' probabilities in one small copied row (sentiment first, `sentiment_width`
    of them), so no entry keeps a whole batch's arrays alive.
    """
    if not inputs:
        return forward(inputs)
    keys = [cache.key(span, ids) for span, ids in zip(spans, inputs, strict=True)]
    found, missing = cache.lookup(keys)
    if missing:
        first: dict[Key, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        sentiment, emotion = forward([inputs[first[key]] for key in missing])
        computed = {
            key: np.concatenate([sentiment[row], emotion[row]]) for row, key in enumerate(missing)
        }
        cache.store(computed)
        found.update(computed)
    rows = np.stack([found[key] for key in keys])
    return rows[:, :sentiment_width], rows[:, sentiment_width:]
