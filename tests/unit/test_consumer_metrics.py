"""ConsumerMetrics against a fake faust consumer: lag, assignment, rebalances, commits, GPU."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from prometheus_client import CollectorRegistry

from stream.consumer_metrics import ConsumerMetrics
from stream.metrics import ValenceMetrics

T0, T1, T2 = TP("in", 0), TP("in", 1), TP("in", 2)


@dataclass
class FakeConsumer:
    assigned: set[TP]
    ends: dict[TP, int]
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    log_start: dict[TP, int] = field(default_factory=dict)
    fail: Exception | None = None

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        if self.fail is not None:
            raise self.fail
        return {tp: self.ends[tp] for tp in tps}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.log_start.get(tp, 0) for tp in tps}


class NotStarted:
    def assignment(self) -> set[TP]:
        raise ConsumerNotStarted("Consumer thread not yet started")


def _setup(consumer: Any) -> tuple[ConsumerMetrics, Any, CollectorRegistry]:
    metrics = ValenceMetrics.create(CollectorRegistry())
    return ConsumerMetrics(metrics), SimpleNamespace(consumer=consumer), metrics.registry


def _lag(registry: CollectorRegistry, tp: TP) -> float | None:
    return registry.get_sample_value(
        "valence_consumer_lag_messages", {"topic": tp.topic, "partition": str(tp.partition)}
    )


def test_lag_is_highwater_minus_committed_else_minus_log_start() -> None:
    consumer = FakeConsumer(
        {T0, T1}, {T0: 100, T1: 50}, _committed_offset={T0: 90, T1: None}, log_start={T1: 20}
    )
    sensor, app, registry = _setup(consumer)
    asyncio.run(sensor.refresh(app))
    assert _lag(registry, T0) == 10
    assert _lag(registry, T1) == 30  # never committed: everything retained is behind
    assigned = registry.get_sample_value("valence_consumer_assigned_partitions", {"topic": "in"})
    assert assigned == 2


def test_series_of_lost_partitions_are_removed_after_a_rebalance() -> None:
    consumer = FakeConsumer({T0, T1, T2}, {T0: 5, T1: 5, T2: 5, TP("other", 0): 1})
    sensor, app, registry = _setup(consumer)
    asyncio.run(sensor.refresh(app))
    assert _lag(registry, T2) == 5
    state = sensor.on_rebalance_start(app)
    consumer.assigned = {T0, TP("other", 0)}
    sensor.on_rebalance_return(app, state)
    assert _lag(registry, T0) == 5
    assert _lag(registry, T1) is None and _lag(registry, T2) is None
    get = registry.get_sample_value
    assert get("valence_consumer_assigned_partitions", {"topic": "in"}) == 1
    assert get("valence_consumer_rebalances_total") == 1
    consumer.assigned = {TP("other", 0)}
    asyncio.run(sensor.refresh(app))
    assert get("valence_consumer_assigned_partitions", {"topic": "in"}) is None
    assert _lag(registry, TP("other", 0)) == 1


def test_refresh_never_raises_when_offsets_cannot_be_read() -> None:
    consumer = FakeConsumer({T0}, {T0: 10})
    sensor, app, registry = _setup(consumer)
    asyncio.run(sensor.refresh(app))
    consumer.fail = ConnectionError("broker down")
    asyncio.run(sensor.refresh(app))
    assert _lag(registry, T0) == 10  # the last known value stays


def test_a_consumer_not_started_yet_has_no_series() -> None:
    sensor, app, registry = _setup(NotStarted())
    asyncio.run(sensor.refresh(app))
    assert (
        registry.get_sample_value("valence_consumer_assigned_partitions", {"topic": "in"}) is None
    )


def test_commit_latency_counts_only_rounds_that_committed() -> None:
    consumer = FakeConsumer({T0}, {T0: 10}, _committed_offset={T0: 3})
    sensor, _, registry = _setup(consumer)
    idle = sensor.on_commit_initiated(consumer)  # type: ignore[arg-type]
    sensor.on_commit_completed(consumer, idle)  # type: ignore[arg-type]
    busy = sensor.on_commit_initiated(consumer)  # type: ignore[arg-type]
    consumer._committed_offset[T0] = 7
    sensor.on_commit_completed(consumer, busy)  # type: ignore[arg-type]
    assert registry.get_sample_value("valence_consumer_commit_latency_seconds_count") == 1


def test_gpu_gauges_on_a_cuda_device(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda index: 1_000 + index)
    monkeypatch.setattr(torch.cuda, "utilization", lambda index: 42)
    metrics = ValenceMetrics.create(CollectorRegistry())
    sensor = ConsumerMetrics(metrics, device="cuda:1")
    asyncio.run(sensor.refresh(SimpleNamespace(consumer=NotStarted())))
    get = metrics.registry.get_sample_value
    assert get("valence_gpu_memory_allocated_bytes", {"device": "cuda:1"}) == 1_001
    assert get("valence_gpu_utilization_ratio", {"device": "cuda:1"}) == 0.42


def test_no_gpu_series_on_cpu() -> None:
    sensor, app, registry = _setup(NotStarted())
    asyncio.run(sensor.refresh(app))
    assert "valence_gpu" not in "".join(
        sample.name for family in registry.collect() for sample in family.samples
    )
