"""Acknowledging inputs to faust in offset order, whatever order their outputs finish in.

The scheduler lets a short event overtake a long one (stream/batching.py), and a dead letter
is delivered without waiting for the batch before it, so outputs are delivered out of offset
order. faust must still never commit an offset past an input whose output is not delivered.

How faust 0.15.3 turns acks into commits (faust/transport/consumer.py, `Consumer.ack` and
`_new_offset`): each acked offset is appended to a per-partition list; every
`broker_commit_interval` the list is sorted and the *first run of consecutive offsets* in
it is committed as `last + 1`. It does not check that the run starts at the committed
offset, except that it gives up when the smallest acked offset is more than one past it:
with offset 37 committed (next to read) and only 38 acked, faust commits 39 and offset 37
is lost on a crash; with no offset committed yet (a new group) any run is committed.
`tests/unit/test_acks.py` pins this behaviour. So Valence never hands faust an ack out of
order: `OrderedAcks` holds each partition's acks until every earlier offset it was given
is done, and faust's list is then always one run starting at the committed offset.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Ack = Callable[[], Awaitable[None]]
Partition = tuple[str, int]


@dataclass(slots=True)
class _Slot:
    expected: int = 1  # > 1 when faust delivered the offset again (a rebalance)
    acks: list[Ack] = field(default_factory=list)


class OrderedAcks:
    """Per partition: `expect` each consumed offset, `done` it in any order; acks reach
    faust in offset order, each only once every smaller expected offset is done."""

    def __init__(self) -> None:
        self._open: dict[Partition, OrderedDict[int, _Slot]] = {}
        self._lock = asyncio.Lock()  # one `done` at a time keeps the acks in order

    def expect(self, partition: Partition, offset: int) -> None:
        """Register a consumed input; later offsets' acks wait for this one's."""
        pending = self._open.setdefault(partition, OrderedDict())
        slot = pending.get(offset)
        if slot is not None:
            slot.expected += 1
            return
        last = next(reversed(pending), None)
        pending[offset] = _Slot()
        if last is not None and offset < last:  # redelivered after a rebalance: reorder
            self._open[partition] = OrderedDict(sorted(pending.items()))

    def waiting(self, partition: Partition) -> int:
        """Offsets of `partition` expected and not yet acknowledged to faust."""
        return len(self._open.get(partition, ()))

    async def done(self, partition: Partition, offset: int, ack: Ack) -> None:
        """The input's output is delivered: ack it, and every later input that was only
        waiting for it, in offset order."""
        async with self._lock:
            pending = self._open.get(partition)
            slot = pending.get(offset) if pending is not None else None
            if pending is None or slot is None:
                raise KeyError(f"{partition}@{offset} was never expected")
            slot.acks.append(ack)
            while pending:
                first, head = next(iter(pending.items()))
                if len(head.acks) < head.expected:
                    break
                del pending[first]
                for ready in head.acks:
                    await ready()
            if not pending:
                del self._open[partition]
