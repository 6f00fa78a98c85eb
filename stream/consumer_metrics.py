"""Kafka consumer metrics: lag per partition, assignment, rebalances, commit latency, GPU.

faust's own sensors record milliseconds into buckets made for seconds and have no lag
metric, so Valence records these itself: `ConsumerMetrics` is a faust `Sensor` for the
rebalance and commit hooks, and its `refresh()` (run every `REFRESH_INTERVAL_S` by the
worker) polls what has no hook: offsets and the GPU.

Lag is the log-end offset (highwater) minus the group's committed offset, which is what the
broker and KEDA see: events taken but not yet committed count as lag. Where the group has
committed nothing yet, the log-start offset stands in (the consumer starts at earliest).

After a rebalance the series of partitions this worker lost are removed, so a sum over all
workers counts each partition once and no worker reports a partition it no longer reads.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Set
from typing import Any

from faust.exceptions import ConsumerNotStarted
from faust.sensors.base import Sensor
from faust.types import TP, AppT
from faust.types.transports import ConsumerT

from stream.metrics import ValenceMetrics

log = logging.getLogger(__name__)

REFRESH_INTERVAL_S = 5.0
CommitState = tuple[float, dict[TP, int]]


def committed_offsets(consumer: ConsumerT) -> dict[TP, int]:
    """The offsets this worker last committed (or found committed), per partition.

    faust keeps them in `Consumer._committed_offset`; there is no public accessor, and
    asking the broker every few seconds per partition would cost a round trip each.
    """
    offsets: Mapping[TP, int | None] = getattr(consumer, "_committed_offset", {})
    return {tp: offset for tp, offset in list(offsets.items()) if offset is not None}


def assignment(app: AppT) -> set[TP]:
    try:
        return set(app.consumer.assignment())
    except ConsumerNotStarted:
        return set()


class ConsumerMetrics(Sensor):
    """Records consumer-group metrics into `ValenceMetrics`; add it with `app.sensors.add`."""

    def __init__(self, metrics: ValenceMetrics, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics
        self.device = device
        self._lag_series: set[tuple[str, str]] = set()
        self._topics: set[str] = set()
        self._last_error = ""
        self.total_lag = 0  # over this worker's partitions, as of the last refresh

    # --- faust hooks ------------------------------------------------------------------------
    # on_rebalance_start runs in the consumer's thread; prometheus_client is thread-safe and
    # nothing else here is touched there.

    def on_rebalance_start(self, app: AppT) -> dict:
        self.metrics.rebalances.inc()
        return super().on_rebalance_start(app)

    def on_rebalance_return(self, app: AppT, state: dict) -> None:
        # The new assignment is known: drop the series of partitions that went elsewhere.
        self.sync_assignment(assignment(app))

    def on_commit_initiated(self, consumer: ConsumerT) -> CommitState:
        return time.monotonic(), committed_offsets(consumer)

    def on_commit_completed(self, consumer: ConsumerT, state: CommitState) -> None:
        started, before = state
        # faust runs a commit round every interval even with nothing to commit; only
        # rounds that moved an offset are measured, so idle rounds do not hide slow ones.
        if committed_offsets(consumer) != before:
            self.metrics.commit_latency.observe(time.monotonic() - started)

    # --- polled -----------------------------------------------------------------------------

    def sync_assignment(self, assigned: Set[TP]) -> None:
        """Set the assigned-partitions gauge and remove series of partitions not assigned."""
        labels = {(tp.topic, str(tp.partition)) for tp in assigned}
        for topic, partition in self._lag_series - labels:
            self.metrics.consumer_lag.remove(topic, partition)
        self._lag_series &= labels
        per_topic = Counter(topic for topic, _ in labels)
        for topic in self._topics - per_topic.keys():
            self.metrics.assigned_partitions.remove(topic)
        for topic, count in per_topic.items():
            self.metrics.assigned_partitions.labels(topic=topic).set(count)
        self._topics = set(per_topic)

    async def refresh(self, app: AppT) -> None:
        """Update assignment, lag and GPU gauges. Never raises: metrics must not stop scoring."""
        try:
            assigned = assignment(app)
            self.sync_assignment(assigned)
            if assigned:
                await self._refresh_lag(app, assigned)
            else:
                self.total_lag = 0
            self._last_error = ""
        except Exception as exc:  # broker unreachable, consumer stopping, rebalance race
            if repr(exc) != self._last_error:  # once per kind of failure, not every tick
                log.warning("consumer lag not updated: %r", exc)
            self._last_error = repr(exc)
        self._refresh_gpu()

    async def _refresh_lag(self, app: AppT, assigned: Set[TP]) -> None:
        consumer = app.consumer
        partitions = sorted(assigned)
        # One ListOffsets request: exact even for paused partitions, whose fetch-response
        # highwater (`consumer.highwater(tp)`) would go stale.
        ends = await consumer.highwaters(*partitions)
        done: dict[TP, int] = committed_offsets(consumer)
        never_committed = [tp for tp in partitions if tp not in done]
        if never_committed:
            done.update(await consumer.earliest_offsets(*never_committed))
        still_assigned = assignment(app)  # a rebalance may have run during the awaits
        total = 0
        for tp in partitions:
            end, committed = ends.get(tp), done.get(tp)
            if tp not in still_assigned or end is None or committed is None:
                continue
            lag = max(end - committed, 0)
            self.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
            self._lag_series.add((tp.topic, str(tp.partition)))
            total += lag
        self.total_lag = total

    def _refresh_gpu(self) -> None:
        if not self.device.startswith("cuda"):
            return
        import torch  # already loaded by the model; kept out of this module's import

        index = torch.device(self.device).index
        index = torch.cuda.current_device() if index is None else index
        label = f"cuda:{index}"
        self.metrics.gpu_memory_allocated.labels(device=label).set(
            torch.cuda.memory_allocated(index)
        )
        try:
            busy_percent = torch.cuda.utilization(index)
        except Exception as exc:  # no nvidia-ml-py, or NVML unavailable in this container
            log.debug("GPU utilisation unavailable: %r", exc)
            return
        self.metrics.gpu_utilization.labels(device=label).set(busy_percent / 100)
