"""Drive a running consumer (the worker or the naive one) through the real broker.

A phase sends events to the consumer's input topic -- all at once (a backlog: saturation) or
as Poisson arrivals at a fixed offered rate -- while a collector reads the output topic
from its end. Every output event carries `timings.produced_at` (stamped when the benchmark
handed it to the producer) and `scored_at` (stamped by the consumer after the model call);
the collector adds the wall time it received the record. So, per event:

- end-to-end latency = received - produced_at (what a writer waiting on the topic sees);
- scored latency = scored_at - produced_at;
- saturated throughput = events / (last scored_at - first `timings.received_at`): from the
  consumer picking up the first event of the backlog to the last event scored, so every
  batch and every gap between model calls counts, as in the model-only sum of `score` times.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from stream.config import Settings


@dataclass(frozen=True, slots=True)
class Observed:
    produced: float  # epoch seconds
    picked_up: float  # the consumer decoded it (`timings.received_at`)
    scored: float
    received: float  # the benchmark read the output
    batch_events: int
    sentences: int = 1
    queued: float = 0.0  # seconds from picked up to its model call (`timings.queued_ms`)
    inference: float = 0.0  # seconds its model call took (`timings.inference_ms`)


def _epoch(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


class Collector:
    """Reads `topic` from its current end (no consumer group, so no one's offsets move)."""

    def __init__(self, settings: Settings, topic: str):
        self.settings = settings
        self.topic = topic
        self.duplicates = 0
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            **self.settings.kafka_client_options(),
        )
        await consumer.start()
        self._consumer = consumer
        # The benchmark created the topic with this many partitions.
        partitions = range(self.settings.topic_partitions)
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for partition in assigned:  # resolve now, before anything is sent
            await consumer.position(partition)

    async def collect(self, wanted: set[str], timeout_s: float) -> dict[str, Observed]:
        """Until every wanted event id has arrived, or `timeout_s` passed."""
        assert self._consumer is not None
        seen: dict[str, Observed] = {}
        deadline = time.monotonic() + timeout_s
        while len(seen) < len(wanted) and time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=200)
            received = time.time()
            for records in batches.values():
                for record in records:
                    value = orjson.loads(record.value)
                    event_id = value.get("event_id")
                    if event_id not in wanted:
                        continue
                    if event_id in seen:
                        self.duplicates += 1
                        continue
                    timings = value["timings"]
                    seen[event_id] = Observed(
                        produced=_epoch(timings["produced_at"]),
                        picked_up=_epoch(timings["received_at"]),
                        scored=_epoch(value["scored_at"]),
                        received=received,
                        batch_events=int(timings.get("batch_events", 1)),
                        sentences=len(value.get("sentences") or ()),
                        queued=float(timings.get("queued_ms", 0.0)) / 1000,
                        inference=float(timings.get("inference_ms", 0.0)) / 1000,
                    )
        return seen

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


def _producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=5,
        max_request_size=8 * 1024 * 1024,
        **settings.kafka_client_options(),
    )


async def _send(producer: AIOKafkaProducer, topic: str, event: dict[str, Any]) -> Any:
    event = {**event, "produced_at": datetime.now(UTC).isoformat()}
    return await producer.send(topic, orjson.dumps(event), key=str(event["doc_id"]).encode())


async def send_events_paced(
    settings: Settings,
    topic: str,
    events: Sequence[dict[str, Any]],
    rate: float | None,
    seed: int = 7,
) -> float:
    """Send `events` as Poisson arrivals at `rate` per second (None: all at once), each
    stamped `produced_at` as it is sent; returns the seconds the sending took."""
    rng = random.Random(seed)
    producer = _producer(settings)
    await producer.start()
    started = time.monotonic()
    futures = []
    try:
        due = started
        for event in events:
            if rate:
                due += rng.expovariate(rate)
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            futures.append(await _send(producer, topic, event))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.monotonic() - started


@dataclass
class PhaseResult:
    name: str
    sent: int
    offered_rate: float | None  # events/s asked for; None for a backlog
    send_seconds: float
    observed: dict[str, Observed] = field(repr=False)
    duplicates: int = 0

    def summary(self) -> dict[str, Any]:
        values = list(self.observed.values())
        result: dict[str, Any] = {
            "name": self.name,
            "sent": self.sent,
            "scored": len(values),
            "missing": self.sent - len(values),
            "duplicates": self.duplicates,
            "offered_rate": None if self.offered_rate is None else round(self.offered_rate, 2),
            "achieved_offered_rate": round(self.sent / self.send_seconds, 2)
            if self.offered_rate
            else None,
        }
        if not values:
            return result
        result["throughput"] = round(saturated_throughput(values), 2)
        result["mean_batch_events"] = round(float(np.mean([v.batch_events for v in values])), 2)
        result["latency_ms"] = {
            "end_to_end": percentiles([v.received - v.produced for v in values]),
            "scored": percentiles([v.scored - v.produced for v in values]),
        }
        result["end_to_end_by_size"] = by_size(values)
        result["stages_ms"] = stages(values)
        return result


def saturated_throughput(observed: Sequence[Observed]) -> float:
    """Events per second from the first event picked up to the last one scored."""
    first = min(v.picked_up for v in observed)
    last = max(v.scored for v in observed)
    return len(observed) / (last - first) if last > first else float("nan")


# Sentences per text, as the workload's kinds (workload.MIX) draw them.
SIZES = (("sentence", 1, 1), ("paragraph", 2, 6), ("page", 7, 20), ("document", 21, 10**9))


def by_size(observed: Sequence[Observed]) -> dict[str, dict[str, float]]:
    """End-to-end latency percentiles per text size (sentences scored), with counts."""
    out = {}
    for name, low, high in SIZES:
        chosen = [v.received - v.produced for v in observed if low <= v.sentences <= high]
        if chosen:
            out[name] = {"events": len(chosen), **percentiles(chosen)}
    return out


# Where an event's end-to-end time went, in order: Kafka and the consumer's intake (produced
# -> picked up), waiting for a model call, the call, and the rest (publishing, the broker,
# the collector's fetch; scored_at is stamped after the call, so this includes the build of
# the scored event).
STAGES = ("intake", "queued", "inference", "publish")


def _stages(value: Observed) -> tuple[float, float, float, float]:
    return (
        value.picked_up - value.produced,
        value.queued,
        value.inference,
        value.received - value.scored,
    )


def stages(observed: Sequence[Observed]) -> dict[str, dict[str, float]]:
    """Median of each stage over all events and over the slowest 1% (end to end): says
    whether a tail comes from the model, from waiting for it, or from around it."""
    ranked = sorted(observed, key=lambda v: v.received - v.produced)
    tail = ranked[-max(1, len(ranked) // 100) :]
    out = {}
    for name, chosen in (("all", ranked), ("slowest_1pct", tail)):
        table = np.asarray([_stages(v) for v in chosen]) * 1000
        medians = np.median(table, axis=0)
        out[name] = {
            "events": len(chosen),
            **{stage: round(float(m), 1) for stage, m in zip(STAGES, medians, strict=True)},
        }
    return out


def percentiles(seconds: Sequence[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1000
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "p50": round(float(p50), 1),
        "p95": round(float(p95), 1),
        "p99": round(float(p99), 1),
        "max": round(float(values.max()), 1),
        "mean": round(float(values.mean()), 1),
    }


async def run_phase(
    settings: Settings,
    input_topic: str,
    output_topic: str,
    events: Sequence[dict[str, Any]],
    name: str,
    rate: float | None,
    timeout_s: float,
) -> PhaseResult:
    """Send `events` (backlog or paced) and collect their outputs."""
    collector = Collector(settings, output_topic)
    try:
        await collector.start()
        wanted = {str(event["event_id"]) for event in events}
        collecting = asyncio.ensure_future(collector.collect(wanted, timeout_s))
        send_seconds = await send_events_paced(settings, input_topic, events, rate)
        observed = await collecting
    finally:
        await collector.stop()
    return PhaseResult(name, len(events), rate, send_seconds, observed, collector.duplicates)
