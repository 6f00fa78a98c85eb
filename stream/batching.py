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

The express lane (`express_tokens` > 0): a model call cannot be interrupted, so on the CPU a
typed sentence that arrives while a 2048-token call runs waits for all of it (about 1.2 s on
a slow 2-core host). A second model call may then run beside the main one, taking only
events of at most `express_tokens` that the caller marked `express` (the pipeline: events
that want no suggestions or attributions). Order holds across the two lanes: a key taken
by one lane is not a candidate for the other until its batch is `finish`ed (scored and its
records sent), so one document's events still leave in arrival order; within a lane,
batches are scored one after another.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
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
    express_tokens: int = 0  # 0: no express lane

    def __post_init__(self) -> None:
        if self.max_events < 1 or self.max_tokens < 1 or self.max_wait_s < 0:
            raise ValueError(f"invalid batch policy {self}")
        if self.max_overdue_streak < 0 or self.express_tokens < 0:
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


# Events up to this many (estimated) tokens may use the express lane when
# `batch_express_tokens` is unset: a sentence or two on the CPU; a GPU's calls take
# milliseconds, so it needs none.
DEFAULT_EXPRESS_TOKENS = {"cpu": 64, "cuda": 0}


def batch_policy(settings: Settings, device: str) -> BatchPolicy:
    """The worker's policy for a model on `device` ("cpu", "cuda" or "cuda:N")."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    max_tokens = settings.batch_max_tokens
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS[kind]
    express_tokens = settings.batch_express_tokens
    if express_tokens is None:
        express_tokens = DEFAULT_EXPRESS_TOKENS[kind]
    if settings.batch_order == "arrival":
        express_tokens = 0  # first in, first out: nothing overtakes
    return BatchPolicy(
        max_events=settings.batch_max_events,
        max_tokens=max_tokens,
        max_wait_s=settings.batch_max_wait_s,
        flush_when_idle=settings.batch_flush_when_idle,
        order=settings.batch_order,
        max_bypass_s=settings.batch_max_bypass_s,
        max_overdue_streak=settings.batch_max_overdue_streak,
        express_tokens=express_tokens,
    )


@dataclass(slots=True)
class Batch(Generic[Item]):
    items: list[Item]
    tokens: int
    opened_at: float
    keys: list[Hashable] = field(default_factory=list)  # whose order it holds (finish)
    express: bool = False  # taken by the express lane


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
    express: bool  # may go to the express lane


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
        # Keys of batches taken and not finished: the lane (express or not) and how many.
        self._in_flight: dict[Hashable, tuple[bool, int]] = {}

    def __len__(self) -> int:
        return self._count

    def add(
        self,
        item: Item,
        tokens: int,
        key: Hashable = None,
        *,
        alone: bool = False,
        express: bool = False,
    ) -> None:
        """Queue `item`; items with the same non-None `key` keep their order. An item added
        `alone` gets a batch to itself (a piece of a long document: short events then never
        wait for more than one piece, and never share its call). An item added `express`
        may go to the express lane if it is short enough (module docstring)."""
        seq = next(self._seq)
        now = self._clock()
        queue_key = key if key is not None else ("unkeyed", seq)
        express = express and not alone and 0 < tokens <= self.policy.express_tokens
        self._queues.setdefault(queue_key, deque()).append(
            _Waiting(item, tokens, queue_key, now, seq, alone, express)
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

    def _candidate(self, key: Hashable, *, express: bool) -> bool:
        """May the head of `key`'s queue go to this lane now?"""
        lane = self._in_flight.get(key)
        if lane is not None and lane[0] != express:
            return False  # its previous batch is still being scored in the other lane
        return not express or self._queues[key][0].express

    def ready(self, *, express: bool) -> bool:
        """Is any waiting item a candidate for this lane?"""
        return any(self._candidate(key, express=express) for key in self._queues)

    def finish(self, keys: list[Hashable]) -> None:
        """The batch that held `keys` is scored and its records sent: their next items may
        go to either lane."""
        for key in keys:
            lane, count = self._in_flight[key]
            if count > 1:
                self._in_flight[key] = (lane, count - 1)
            else:
                del self._in_flight[key]

    def should_flush(self, *, model_idle: bool) -> bool:
        if not self._count or not self.ready(express=False):
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

    def take(self, *, express: bool = False) -> Batch[Item]:
        """The next batch for the main lane (or the express lane), by the policy's order and
        caps (empty when nothing is a candidate). Its keys are in flight until `finish`."""
        now = self._clock()
        acc: BatchAccumulator[Item] = BatchAccumulator(self.policy, clock=lambda: now)
        # The express lane takes only short items, cheapest first; overdue rules are the
        # main lane's (it takes whatever is overdue, short or not).
        overdue_first = False if express else self._overdue_first(now)
        heads = [
            (self._priority(queue[0], now, overdue_first=overdue_first), queue[0].seq, key)
            for key, queue in self._queues.items()
            if self._candidate(key, express=express)
        ]
        keys: list[Hashable] = []
        heapq.heapify(heads)
        opened_at = now
        while heads:
            _, _, key = heads[0]
            queue = self._queues[key]
            waiting = queue[0]
            if (waiting.alone and len(acc)) or (express and not waiting.express):
                heapq.heappop(heads)  # waits for a call of its own, or for the main lane
                continue
            if not acc.fits(waiting.tokens):
                break  # the best candidate does not fit: the batch is as full as it gets
            heapq.heappop(heads)
            queue.popleft()
            acc.add(waiting.item, waiting.tokens)
            if not keys or keys[-1] != key:
                keys.append(key)
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
        batch.keys = list(dict.fromkeys(keys))
        batch.express = express
        for key in batch.keys:
            self._in_flight[key] = (express, self._in_flight.get(key, (express, 0))[1] + 1)
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

    @property
    def express(self) -> bool:
        """Does the policy have an express lane?"""
        return self.policy.express_tokens > 0

    async def put(
        self,
        item: Item,
        tokens: int,
        key: Hashable = None,
        *,
        alone: bool = False,
        express: bool = False,
    ) -> None:
        """Queue `item` (waits while too many are pending). Items with the same `key` are
        batched in the order they were put; see `WaitingRoom.add` for `alone` and
        `express`."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._pending < self._max_pending)
            self._pending += 1
            self._room.add(item, tokens, key, alone=alone, express=express)
            self._changed.notify_all()

    async def finish(self, batch: Batch[Item]) -> None:
        """The lane is done with `batch` (scored, records sent): its keys are free."""
        async with self._changed:
            self._room.finish(batch.keys)
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

    async def next_batch_express(self) -> Batch[Item] | None:
        """Wait for the express lane's next batch (it is idle when this is called): as soon
        as a short item is a candidate. Returns None once closed (the main lane drains the
        rest)."""
        async with self._changed:
            while True:
                if self._room.ready(express=True):
                    return self._room.take(express=True)
                if self._closed:
                    return None
                await self._changed.wait()

    async def next_batch(self) -> Batch[Item] | None:
        """Wait for the next batch the policy lets go (the model is idle when this is
        called). Returns None once closed and empty."""
        async with self._changed:
            while True:
                ready = self._room.ready(express=False)
                if self._room.should_flush(model_idle=True) or (self._closed and ready):
                    return self._room.take()
                if self._closed and not len(self._room):
                    return None
                if not ready:  # all that waits is behind the express lane's batch
                    await self._changed.wait()
                    continue
                deadline = self._room.deadline()
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout)
                except TimeoutError:
                    if self._room.ready(express=False):
                        return self._room.take()
