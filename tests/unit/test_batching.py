"""The flush rule: events, tokens and wait, and the idle flush."""

from __future__ import annotations

import asyncio

import pytest

from stream.batching import BatchAccumulator, BatchPolicy, MicroBatcher, WaitingRoom


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_flushes_at_max_events() -> None:
    acc: BatchAccumulator[int] = BatchAccumulator(
        BatchPolicy(max_events=3, max_tokens=10**6, flush_when_idle=False), Clock()
    )
    for i in range(3):
        assert not acc.should_flush(model_idle=False)
        acc.add(i, 5)
    assert acc.should_flush(model_idle=False)
    assert not acc.fits(1)
    batch = acc.drain()
    assert batch.items == [0, 1, 2] and batch.tokens == 15 and len(acc) == 0


def test_token_cap_refuses_an_item_that_would_overflow() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(
        BatchPolicy(max_events=100, max_tokens=100), Clock()
    )
    acc.add("a", 60)
    assert not acc.fits(41)
    assert acc.fits(40)


def test_single_item_over_the_token_cap_is_still_accepted() -> None:
    acc: BatchAccumulator[str] = BatchAccumulator(BatchPolicy(max_tokens=100), Clock())
    assert acc.fits(5_000)
    acc.add("long", 5_000)
    assert acc.is_full()


def test_wait_counts_from_the_first_item() -> None:
    clock = Clock()
    acc: BatchAccumulator[int] = BatchAccumulator(
        BatchPolicy(max_events=10, max_wait_s=0.05, flush_when_idle=False), clock
    )
    acc.add(1, 1)
    clock.now += 0.03
    acc.add(2, 1)
    assert not acc.should_flush(model_idle=True)
    clock.now += 0.021
    assert acc.should_flush(model_idle=False)


def test_idle_model_flushes_at_once_when_enabled() -> None:
    acc: BatchAccumulator[int] = BatchAccumulator(BatchPolicy(max_wait_s=10), Clock())
    acc.add(1, 1)
    assert acc.should_flush(model_idle=True)
    assert not acc.should_flush(model_idle=False)


def test_invalid_policy_is_rejected() -> None:
    with pytest.raises(ValueError):
        BatchPolicy(max_events=0)


def test_micro_batcher_honours_tokens_order_and_backpressure() -> None:
    async def scenario() -> None:
        batcher: MicroBatcher[int] = MicroBatcher(
            BatchPolicy(max_events=4, max_tokens=100, max_wait_s=0.01), max_pending=6
        )
        for i in range(6):
            await batcher.put(i, 40)
        blocked = asyncio.ensure_future(batcher.put(6, 40))
        await asyncio.sleep(0.01)
        assert not blocked.done(), "put must wait while max_pending items are in flight"
        first = await batcher.next_batch()
        assert first is not None and first.items == [0, 1]  # 3 x 40 > 100 tokens
        await batcher.release(2)
        await asyncio.wait_for(blocked, 1)
        rest = []
        await batcher.close()
        while (batch := await batcher.next_batch()) is not None:
            rest.extend(batch.items)
            assert batch.tokens <= 100
        assert rest == [2, 3, 4, 5, 6]

    asyncio.run(scenario())


def test_micro_batcher_waits_out_the_timer_without_idle_flush() -> None:
    async def scenario() -> float:
        batcher: MicroBatcher[int] = MicroBatcher(
            BatchPolicy(max_events=100, max_wait_s=0.2, flush_when_idle=False), max_pending=100
        )
        loop = asyncio.get_running_loop()
        await batcher.put(1, 1)
        started = loop.time()
        batch = await batcher.next_batch()
        assert batch is not None and batch.items == [1]
        return loop.time() - started

    assert asyncio.run(scenario()) >= 0.15


def test_token_cap_defaults_by_device_unless_set() -> None:
    from stream.batching import DEFAULT_MAX_TOKENS, batch_policy
    from stream.config import Settings

    unset = Settings()
    assert batch_policy(unset, "cpu").max_tokens == DEFAULT_MAX_TOKENS["cpu"] == 2048
    assert batch_policy(unset, "cuda:0").max_tokens == DEFAULT_MAX_TOKENS["cuda"]
    chosen = Settings(batch_max_tokens=4096, batch_max_events=8)
    for device in ("cpu", "cuda"):
        policy = batch_policy(chosen, device)
        assert (policy.max_tokens, policy.max_events) == (4096, 8)


def _room(clock: Clock, **policy: object) -> WaitingRoom[str]:
    return WaitingRoom(BatchPolicy(**policy), clock)  # type: ignore[arg-type]


def test_a_short_event_of_another_document_overtakes_a_long_one() -> None:
    room = _room(Clock(), max_tokens=500)
    room.add("long-doc", 1200, key="a")
    room.add("sentence", 12, key="b")
    assert room.take().items == ["sentence"]
    assert room.take().items == ["long-doc"]
    assert len(room) == 0


def test_events_of_one_document_keep_their_order() -> None:
    room = _room(Clock(), max_tokens=500)
    room.add("long-a1", 1200, key="a")
    room.add("short-a2", 12, key="a")
    room.add("short-b1", 30, key="b")
    assert room.take().items == ["short-b1"]  # a2 waits: a1 is the only candidate of "a"
    assert room.take().items == ["long-a1"]
    assert room.take().items == ["short-a2"]


def test_one_document_may_share_a_batch_in_arrival_order() -> None:
    room = _room(Clock(), max_tokens=10_000)
    room.add("a1", 300, key="a")
    room.add("a2", 5, key="a")
    room.add("b1", 50, key="b")
    assert room.take().items == ["b1", "a1", "a2"]


def test_an_event_waiting_past_the_bypass_limit_goes_first() -> None:
    clock = Clock()
    room = _room(clock, max_tokens=500, max_bypass_s=1.0)
    room.add("long", 400, key="a")
    clock.now += 1.5
    room.add("short", 10, key="b")
    room.add("short2", 10, key="c")
    batch = room.take()
    assert batch.items == ["long", "short", "short2"]
    assert batch.opened_at == 100.0  # the oldest item's arrival


def test_arrival_order_is_first_in_first_out() -> None:
    room = _room(Clock(), max_tokens=500, order="arrival")
    room.add("long", 400, key="a")
    room.add("short", 10, key="b")
    room.add("another long", 400, key="c")
    assert room.take().items == ["long", "short"]
    assert room.take().items == ["another long"]


def test_waiting_room_flush_rule_matches_the_accumulator() -> None:
    clock = Clock()
    room = _room(clock, max_events=3, max_wait_s=0.05, flush_when_idle=False)
    assert not room.should_flush(model_idle=True)
    room.add("x", 1)
    assert not room.should_flush(model_idle=True)
    clock.now += 0.06
    assert room.should_flush(model_idle=False)
    room.add("y", 1)
    room.add("z", 1)
    assert room.take().items == ["x", "y", "z"]
    assert room.deadline() is None


def test_items_added_alone_get_a_batch_each_and_short_ones_go_between() -> None:
    room = _room(Clock(), max_tokens=10_000)
    room.add("piece-1", 250, key="a", alone=True)
    room.add("piece-2", 250, key="a", alone=True)
    room.add("next-a", 5, key="a")
    room.add("sentence", 10, key="b")
    assert room.take().items == ["sentence"]  # a piece never shares a call
    assert room.take().items == ["piece-1"]
    room.add("late sentence", 10, key="c")
    assert room.take().items == ["late sentence"]
    assert room.take().items == ["piece-2"]
    assert room.take().items == ["next-a"]


def test_an_overdue_piece_still_goes_alone() -> None:
    clock = Clock()
    room = _room(clock, max_tokens=10_000, max_bypass_s=1.0)
    room.add("piece", 250, key="a", alone=True)
    clock.now += 2.0
    room.add("sentence", 10, key="b")
    assert room.take().items == ["piece"]
    assert room.take().items == ["sentence"]


def test_documents_are_split_on_the_cpu_by_default_only() -> None:
    from stream.batching import split_tokens
    from stream.config import Settings

    assert split_tokens(Settings(), "cpu") == 256
    assert split_tokens(Settings(), "cuda:0") == 0
    assert split_tokens(Settings(batch_split_tokens=0), "cpu") == 0
    assert split_tokens(Settings(batch_split_tokens=512), "cuda") == 512


def test_overdue_items_take_at_most_the_streak_limit_of_calls_in_a_row() -> None:
    clock = Clock()
    room = _room(clock, max_tokens=10_000, max_bypass_s=1.0, max_overdue_streak=1)
    for index in range(3):
        room.add(f"piece-{index}", 250, key="doc", alone=True)
    clock.now += 2.0  # every piece is overdue now
    room.add("sentence", 10, key="b")
    room.add("sentence-2", 10, key="c")
    assert room.take().items == ["piece-0"]  # overdue first ...
    assert room.take().items == ["sentence", "sentence-2"]  # ... once, then cheapest first
    room.add("late sentence", 10, key="d")
    assert room.take().items == ["piece-1"]  # overdue pieces keep every other call
    assert room.take().items == ["late sentence"]
    assert room.take().items == ["piece-2"]


def test_without_a_streak_limit_overdue_items_always_go_first() -> None:
    clock = Clock()
    room = _room(clock, max_tokens=10_000, max_bypass_s=1.0, max_overdue_streak=0)
    for index in range(3):
        room.add(f"piece-{index}", 250, key="doc", alone=True)
    clock.now += 2.0
    room.add("sentence", 10, key="b")
    assert [room.take().items for _ in range(4)] == [
        ["piece-0"],
        ["piece-1"],
        ["piece-2"],
        ["sentence"],
    ]


def test_under_bursty_load_the_streak_limit_keeps_sentences_out_of_the_overdue_queue() -> None:
    """The waiting room itself, in simulated time (stream.bench.queue_model): Poisson
    arrivals of the realistic mix at ~70% of a CPU-like model's capacity, documents split."""
    from stream.bench.queue_model import simulate

    unlimited = simulate(BatchPolicy(max_tokens=2048, max_overdue_streak=0), rate=18, seed=1)
    limited = simulate(BatchPolicy(max_tokens=2048, max_overdue_streak=1), rate=18, seed=1)
    assert unlimited["sentence_p99"] > 500  # sentences queue behind overdue pieces
    assert limited["sentence_p99"] < 400
    assert limited["all_p99"] < 2 * unlimited["all_p99"]  # documents are delayed, not starved


def test_the_express_lane_takes_short_items_and_never_a_documents_next_one_early() -> None:
    policy = BatchPolicy(max_wait_s=0.0, express_tokens=64)
    room: WaitingRoom[str] = WaitingRoom(policy)
    room.add("page-a", 600, key="a", express=True)  # too long for the lane
    room.add("typed-b", 12, key="b", express=True)
    room.add("typed-c", 12, key="c")  # wants suggestions: not marked express
    assert room.ready(express=True)
    express = room.take(express=True)
    assert express.items == ["typed-b"] and express.express
    assert not room.ready(express=True)  # a page and an unmarked sentence are the main lane's
    main = room.take()
    assert main.items == ["typed-c", "page-a"]
    # A document's batch in the main lane keeps its next event out of the express lane.
    room = WaitingRoom(policy)
    room.add("first-a", 20, key="a", express=True)
    first = room.take()  # the main lane takes it
    room.add("second-a", 10, key="a", express=True)
    assert not room.ready(express=True)
    room.finish(first.keys)
    assert room.take(express=True).items == ["second-a"]


def test_the_express_lane_is_off_for_arrival_order_and_on_a_gpu() -> None:
    from stream.batching import batch_policy
    from stream.config import Settings

    assert batch_policy(Settings(), "cpu").express_tokens == 64
    assert batch_policy(Settings(), "cuda:0").express_tokens == 0
    assert batch_policy(Settings(batch_order="arrival"), "cpu").express_tokens == 0
    assert batch_policy(Settings(batch_express_tokens=0), "cpu").express_tokens == 0
