"""Micro-batching: which decoded events go to the model next, and when.

A batch is flushed when it holds `max_events` events, or when the next event would take it
past `max_tokens`, or `max_wait_s` after its first event arrived, or -- with
`flush_when_idle` -- as soon as the model is idle and anything is waiting (so a trickle of
events is scored one by one without waiting out the timer, while a flood fills batches
because the model is busy). `BatchAccumulator` holds the flush rule as plain code with an
injected clock; `WaitingRoom` decides which waiting items form the next batch; `MicroBatcher`
puts both behind an asyncio queue with backpressure.

Order (`order="shortest"`): a one-sentence event must not wait behind a multi-page
document, so the next batch takes the cheapest waiting items first -- except that items
of one key (a document) leave strictly in arrival order (only the oldest waiting item of a
key is a candidate), and an item waiting longer than `max_bypass_s` goes before every
newer one (long documents are delayed, never starved) -- but for at most
`max_overdue_streak` model calls in a row, after which one call goes cheapest-first again.
Without that limit a burst that made a long document overdue queued every typed sentence
behind all of its remaining pieces: each sentence then waited past the limit itself and the
whole queue became FIFO, which gave sentences the same ~1 s p99 as documents at 70% load.
`order="arrival"` is plain FIFO.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

if TYPE_CHECKING:
    from stream.config import Settings

Item = TypeVar("Item")


CHARS_PER_TOKEN = 3.6  # English prose per WordPiece token (see estimate_tokens)


def estimate_tokens(text: str) -> int:
    """About the tokens `text` will cost the model, without running the tokenizer.

    English prose is about 3.6 characters per WordPiece token (the realistic benchmark mix:
    sum of estimates within 4% of the exact count, 90% of texts within -25%/+20%), plus one
    segment's special tokens. The batcher's token cap only needs to be roughly right, and
    this runs per event on the event loop, where the exact count (a full tokenization and
    sentence split, repeated by the model thread) cost about as much CPU as all other
    per-event work.
    """
    return round(len(text) / CHARS_PER_TOKEN) + 2


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    max_events: int = 64
    max_tokens: int = 8192
    max_wait_s: float = 0.05
    flush_when_idle: bool = True
    order: Literal["shortest", "arrival"] = "shortest"
    max_bypass_s: float = 1.0
    max_overdue_streak: int = 1  # 0: overdue items always go first

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_tokens < 1 or self.max_wait_s < 0:
            raise ValueError(f"invalid batch policy {self}")
        if self.max_overdue_streak < 0:
            raise ValueError(f"invalid batch policy {self}")
        if self.order not in ("shortest", "arrival") or self.max_bypass_s < 0:
            raise ValueError(f"invalid batch policy {self}")


# Token caps when `batch_max_tokens` is unset. On the CPU this is a latency choice: wider
# calls sort more segments by length and scored up to 2x more texts/s in the benchmark's
# sweep, but every event in a call waits for all of it, and at 70% load p99 went from ~2-3 s
# (2048) to ~12 s (8192; bench-results/cpu). A GPU needs wide batches to fill.
DEFAULT_MAX_TOKENS = {"cpu": 2048, "cuda": 32768}


# Documents longer than this many (estimated) tokens are scored in pieces when
# `batch_split_tokens` is unset: on the CPU a 60-sentence document costs seconds of model
# time that a typed sentence would otherwise wait behind; a GPU scores it in milliseconds.
DEFAULT_SPLIT_TOKENS = {"cpu": 256, "cuda": 0}


def split_tokens(settings: Settings, device: str) -> int:
    """The worker's piece size for long documents on `device` (0: never split)."""
    if settings.batch_split_tokens is not None:
        return settings.batch_split_tokens
    return DEFAULT_SPLIT_TOKENS["cuda" if device.startswith("cuda") else "cpu"]


def batch_policy(settings: Settings, device: str) -> BatchPolicy:
    """The worker's policy for a model on `device` ("cpu", "cuda" or "cuda:N")."""
    max_tokens = settings.batch_max_tokens
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS["cuda" if device.startswith("cuda") else "cpu"]
    return BatchPolicy(
        max_events=settings.batch_max_events,
        max_tokens=max_tokens,
        max_wait_s=settings.batch_max_wait_s,
        flush_when_idle=settings.batch_flush_when_idle,
        order=settings.batch_order,
        max_bypass_s=settings.batch_max_bypass_s,
        max_overdue_streak=settings.batch_max_overdue_streak,
    )


@dataclass(slots=True)
class Batch(Generic[Item]):
    items: list[Item]
    tokens: int
    opened_at: float


class BatchAccumulator(Generic[Item]):
    """The flush rule, without I/O. Not thread-safe; one event loop owns it."""

    def __init__(self, policy: BatchPolicy, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self._clock = clock
        self._items: list[Item] = []
        self._tokens = 0
        self._opened_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def tokens(self) -> int:
        return self._tokens

    def fits(self, tokens: int) -> bool:
        """Whether an item of `tokens` may join the open batch.

        An item alone is always accepted, even past the token cap: an over-long text is
        still scored in full (its segments are sub-batched inside the model call).
        """
        if not self._items:
            return True
        return (
            len(self._items) < self.policy.max_events
            and self._tokens + tokens <= self.policy.max_tokens
        )

    def add(self, item: Item, tokens: int) -> None:
        if not self.fits(tokens):
            raise OverflowError("batch is full; flush it first")
        if not self._items:
            self._opened_at = self._clock()
        self._items.append(item)
        self._tokens += tokens

    def is_full(self) -> bool:
        return len(self._items) >= self.policy.max_events or self._tokens >= self.policy.max_tokens

    def deadline(self) -> float | None:
        """Clock time at which the open batch must go, or None when empty."""
        if self._opened_at is None:
            return None
        return self._opened_at + self.policy.max_wait_s

    def should_flush(self, *, model_idle: bool) -> bool:
        if not self._items:
            return False
        if self.is_full():
            return True
        if model_idle and self.policy.flush_when_idle:
            return True
        deadline = self.deadline()
        return deadline is not None and self._clock() >= deadline

    def drain(self) -> Batch[Item]:
        batch = Batch(self._items, self._tokens, self._opened_at or self._clock())
        self._items, self._tokens, self._opened_at = [], 0, None
        return batch


@dataclass(slots=True)
class _Waiting(Generic[Item]):
    item: Item
    tokens: int
    key: Hashable
    arrived: float
    seq: int
    alone: bool  # a model call to itself


class WaitingRoom(Generic[Item]):
    """Items accepted and not yet in a batch, and the rule for which leave next.

    Plain code with an injected clock; not thread-safe (one event loop owns it). Items of one
    key leave in the order they came: only the oldest waiting item of a key is a candidate,
    and the next one becomes a candidate once it has joined a batch (a later position in
    the same batch keeps the order, since a batch is published in item order).
    """

    def __init__(self, policy: BatchPolicy, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self._clock = clock
        self._queues: dict[Hashable, deque[_Waiting[Item]]] = {}
        self._seq = itertools.count()
        self._count = 0
        self._tokens = 0
        self._oldest: float | None = None
        self._overdue_streak = 0  # calls in a row that served overdue items first

    def __len__(self) -> int:
        return self._count

    def add(self, item: Item, tokens: int, key: Hashable = None, *, alone: bool = False) -> None:
        """Queue `item`; items with the same non-None `key` keep their order. An item added
        `alone` gets a batch to itself (a piece of a long document: short events then never
        wait for more than one piece, and never share its call)."""
        seq = next(self._seq)
        now = self._clock()
        queue_key = key if key is not None else ("unkeyed", seq)
        self._queues.setdefault(queue_key, deque()).append(
            _Waiting(item, tokens, queue_key, now, seq, alone)
        )
        self._count += 1
        self._tokens += tokens
        if self._oldest is None:
            self._oldest = now

    def deadline(self) -> float | None:
        """Clock time by which the waiting items must go, or None when none wait."""
        if self._oldest is None:
            return None
        return self._oldest + self.policy.max_wait_s

    def should_flush(self, *, model_idle: bool) -> bool:
        if not self._count:
            return False
        if model_idle and self.policy.flush_when_idle:
            return True
        if self._count >= self.policy.max_events or self._tokens >= self.policy.max_tokens:
            return True
        deadline = self.deadline()
        return deadline is not None and self._clock() >= deadline

    def _overdue(self, waiting: _Waiting[Item], now: float) -> bool:
        return now - waiting.arrived >= self.policy.max_bypass_s

    def _priority(
        self, waiting: _Waiting[Item], now: float, *, overdue_first: bool
    ) -> tuple[int, int, int]:
        if self.policy.order == "arrival" or (overdue_first and self._overdue(waiting, now)):
            return (0, 0, waiting.seq)  # overdue (or FIFO): oldest first, before the rest
        return (1, waiting.tokens, waiting.seq)

    def _overdue_first(self, now: float) -> bool:
        """Whether this call serves overdue items first; counts the streak."""
        if self.policy.order == "arrival":
            return True
        any_overdue = any(self._overdue(queue[0], now) for queue in self._queues.values())
        limit = self.policy.max_overdue_streak
        if not any_overdue or (limit and self._overdue_streak >= limit):
            self._overdue_streak = 0  # nothing overdue, or a cheapest-first turn
            return False
        self._overdue_streak += 1
        return True

    def take(self) -> Batch[Item]:
        """The next batch, by the policy's order and caps (empty when nothing waits)."""
        now = self._clock()
        acc: BatchAccumulator[Item] = BatchAccumulator(self.policy, clock=lambda: now)
        overdue_first = self._overdue_first(now)
        heads = [
            (self._priority(queue[0], now, overdue_first=overdue_first), queue[0].seq, key)
            for key, queue in self._queues.items()
        ]
        heapq.heapify(heads)
        opened_at = now
        while heads:
            _, _, key = heads[0]
            queue = self._queues[key]
            waiting = queue[0]
            if waiting.alone and len(acc):
                heapq.heappop(heads)  # waits for a call of its own
                continue
            if not acc.fits(waiting.tokens):
                break  # the best candidate does not fit: the batch is as full as it gets
            heapq.heappop(heads)
            queue.popleft()
            acc.add(waiting.item, waiting.tokens)
            opened_at = min(opened_at, waiting.arrived)
            self._count -= 1
            self._tokens -= waiting.tokens
            if not queue:
                del self._queues[key]
            else:
                priority = self._priority(queue[0], now, overdue_first=overdue_first)
                heapq.heappush(heads, (priority, queue[0].seq, key))
            if acc.is_full() or waiting.alone:
                break
        self._oldest = min((q[0].arrived for q in self._queues.values()), default=None)
        batch = acc.drain()
        batch.opened_at = opened_at
        return batch


class MicroBatcher(Generic[Item]):
    """Producer side `put`, consumer side `next_batch`, with a bound on queued items.

    `put` waits while `max_pending` items are queued or being processed: that pauses the
    agent, faust's buffers fill, and the consumer stops fetching -- backpressure instead of
    unbounded memory. The processor calls `release(n)` once it has finished n items.
    """

    def __init__(self, policy: BatchPolicy, max_pending: int):
        self.policy = policy
        self._room: WaitingRoom[Item] = WaitingRoom(policy)
        self._changed = asyncio.Condition()
        self._max_pending = max(max_pending, policy.max_events)
        self._pending = 0
        self._closed = False

    @property
    def pending(self) -> int:
        """Items accepted and not yet released (queued or being scored)."""
        return self._pending

    async def put(
        self, item: Item, tokens: int, key: Hashable = None, *, alone: bool = False
    ) -> None:
        """Queue `item` (waits while too many are pending). Items with the same `key` are
        batched in the order they were put; see `WaitingRoom.add` for `alone`."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._pending < self._max_pending)
            self._pending += 1
            self._room.add(item, tokens, key, alone=alone)
            self._changed.notify_all()

    async def release(self, count: int) -> None:
        async with self._changed:
            self._pending -= count
            self._changed.notify_all()

    async def close(self) -> None:
        """No more items will come: `next_batch` flushes what is left, then returns None."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def next_batch(self) -> Batch[Item] | None:
        """Wait for the next batch the policy lets go (the model is idle when this is
        called). Returns None once closed and empty."""
        async with self._changed:
            while True:
                if self._room.should_flush(model_idle=True) or (self._closed and len(self._room)):
                    return self._room.take()
                if self._closed:
                    return None
                deadline = self._room.deadline()
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except TimeoutError:
                    if len(self._room):
                        return self._room.take()
