"""Acks reach faust in offset order, and why that is needed (faust's own commit rule)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from stream.acks import Ack, OrderedAcks


def _faust_commit_offset(committed: int | None, acked: list[int]) -> int | None:
    """The offset faust 0.15.3 would commit for one partition, by its own code."""
    tp = TP("in", 0)
    state = SimpleNamespace(
        _acked=defaultdict(list, {tp: list(acked)}),
        _acked_index=defaultdict(set, {tp: set(acked)}),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None, {tp: committed}),
    )
    return Consumer._new_offset(state, tp)  # type: ignore[arg-type]


def test_faust_commits_past_an_unacknowledged_offset_when_acks_overtake() -> None:
    # In order: offsets 37..39 acked after 37 was committed -> commit 40.
    assert _faust_commit_offset(37, [37, 38, 39]) == 40
    # 37 still unacknowledged, 38 acked: faust commits 39 and skips 37. This is why
    # OrderedAcks exists.
    assert _faust_commit_offset(37, [38]) == 39
    # A new group (nothing committed yet): any run is committed.
    assert _faust_commit_offset(None, [5, 6]) == 7


def _collector() -> tuple[list[int], Callable[[int], Ack]]:
    acked: list[int] = []

    def ack_for(offset: int) -> Ack:
        async def ack() -> None:
            acked.append(offset)

        return ack

    return acked, ack_for


def test_acks_are_released_in_offset_order_per_partition() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        acks = OrderedAcks()
        acked, ack_for = _collector()
        for offset in range(4):
            acks.expect(("in", 0), offset)
        acks.expect(("in", 1), 0)
        await acks.done(("in", 0), 2, ack_for(2))
        await acks.done(("in", 0), 1, ack_for(1))
        held = list(acked)
        await acks.done(("in", 1), 0, ack_for(100))
        await acks.done(("in", 0), 0, ack_for(0))
        await acks.done(("in", 0), 3, ack_for(3))
        assert acks.waiting(("in", 0)) == 0
        return held, acked

    held, acked = asyncio.run(scenario())
    assert held == []  # 1 and 2 are done but 0 is not: nothing reaches faust
    assert acked == [100, 0, 1, 2, 3]


def test_an_offset_delivered_twice_is_acked_once_both_are_done() -> None:
    async def scenario() -> list[int]:
        acks = OrderedAcks()
        acked, ack_for = _collector()
        acks.expect(("in", 0), 5)
        acks.expect(("in", 0), 6)
        acks.expect(("in", 0), 5)  # redelivered after a rebalance
        await acks.done(("in", 0), 5, ack_for(5))
        await acks.done(("in", 0), 6, ack_for(6))
        assert acked == []
        await acks.done(("in", 0), 5, ack_for(5))
        return acked

    assert asyncio.run(scenario()) == [5, 5, 6]


def test_a_smaller_offset_redelivered_later_still_goes_first() -> None:
    async def scenario() -> list[int]:
        acks = OrderedAcks()
        acked, ack_for = _collector()
        acks.expect(("in", 0), 10)
        acks.expect(("in", 0), 7)
        await acks.done(("in", 0), 10, ack_for(10))
        assert acked == []
        await acks.done(("in", 0), 7, ack_for(7))
        return acked

    assert asyncio.run(scenario()) == [7, 10]


def test_done_for_an_offset_never_expected_is_an_error() -> None:
    async def scenario() -> None:
        acks = OrderedAcks()
        _, ack_for = _collector()
        await acks.done(("in", 0), 1, ack_for(1))

    with pytest.raises(KeyError):
        asyncio.run(scenario())
