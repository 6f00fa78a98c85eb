"""The scoring pipeline: bytes -> event -> batch -> model -> scored event -> bytes.

The faust agent feeds `submit` with each raw message and an `ack` callback; `run` turns
batches into published records. Every input ends in exactly one of: a scored event, a
dead letter, or no acknowledgement at all (the worker stopped; it will be redelivered).

Delivery semantics (at-least-once): an input is acknowledged to faust only after its
output record (or its dead letter) is acknowledged by the broker, and only after every
earlier input of its partition was (`OrderedAcks`); faust commits the highest acknowledged
offset every `commit_interval_s` and on a clean stop. A crash replays everything after the
last commit: consumers dedupe on `event_id`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from models.base import ModelInfo
from schemas.events import DeadLetterReason, EditorEvent
from stream.batching import Batch, MicroBatcher, batch_policy, estimate_tokens
from stream.codec import dead_letter_record, decode_event, encode, record_size, scored_event
from stream.config import Settings
from stream.errors import DecodeError, DeliveryFailed
from stream.metrics import ValenceMetrics
from stream.publishing import Delivery, Sink
from stream.scoring import BatchScorer, ScoredText

log = logging.getLogger(__name__)

Ack = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Source:
    """Where a raw message came from: enough to dead-letter it and to acknowledge it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    ack: Ack


class OrderedAcks:
    """Acknowledges each partition's inputs in offset order, whatever order they finish in.

    faust commits past a gap of one unacknowledged offset (faust-streaming 0.15.3,
    `Consumer._new_offset` compares `min(acked) - committed > 1`, and skips the check when
    nothing was committed yet), so an event whose output failed could be committed without
    ever being published. Acknowledging in order means faust never sees a gap.
    """

    def __init__(self) -> None:
        # per partition, in offset order: each taken input and whether it is delivered
        self._pending: dict[tuple[str, int], dict[int, tuple[Source, bool]]] = {}

    def taken(self, source: Source) -> None:
        self._pending.setdefault((source.topic, source.partition), {})[source.offset] = (
            source,
            False,
        )

    async def done(self, source: Source) -> None:
        """`source` is delivered: acknowledge it and every delivered one after it, once
        every earlier one of its partition is delivered."""
        pending = self._pending.get((source.topic, source.partition))
        if pending is None or source.offset not in pending:
            await source.ack()  # not taken through this tracker
            return
        pending[source.offset] = (source, True)
        while pending:
            offset, (first, delivered) = next(iter(pending.items()))
            if not delivered:
                break
            del pending[offset]
            await first.ack()


# aiokafka's default request limit, used where the broker's limits were not read.
DEFAULT_MAX_REQUEST_BYTES = 1_048_576


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """The largest record each topic takes: the smaller of the producer's request limit
    and the topic's `max.message.bytes` (read from the broker at start)."""

    output_max_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    dead_letter_max_bytes: int = DEFAULT_MAX_REQUEST_BYTES


def _where(source: Source) -> tuple[str, int, int]:
    return source.topic, source.partition, source.offset


@dataclass(frozen=True, slots=True)
class Received:
    event: EditorEvent
    source: Source
    tokens: int
    received_at: datetime
    received_mono: float


class ScoringPipeline:
    def __init__(
        self,
        settings: Settings,
        scorer: BatchScorer,
        sink: Sink,
        metrics: ValenceMetrics,
        on_fatal: Callable[[BaseException], Awaitable[None]],
        limits: RecordLimits | None = None,
    ):
        self.settings = settings
        self.limits = limits or RecordLimits()
        self.scorer = scorer
        self.sink = sink
        self.metrics = metrics
        self.model_info: ModelInfo = scorer.scorer.info
        self.batcher: MicroBatcher[Received] = MicroBatcher(
            batch_policy(settings, self.model_info.device),
            max_pending=settings.max_in_flight_events,
        )
        self.delivery = Delivery(on_fatal)
        self._on_fatal = on_fatal
        self.acks = OrderedAcks()
        self.in_flight = 0  # events submitted and not yet acknowledged
        self.last_progress = time.monotonic()  # last acknowledgement (or the start)
        metrics.last_progress.set_to_current_time()

    def _progressed(self, events: int) -> None:
        self.in_flight -= events
        self.metrics.events_in_flight.dec(events)
        self.last_progress = time.monotonic()
        self.metrics.last_progress.set_to_current_time()

    # --- bytes -> event ------------------------------------------------------------------
    async def submit(self, raw: bytes | None, source: Source) -> None:
        """Decode one raw message and queue it for scoring, or dead-letter it.

        Waits (backpressure) while too many events are in flight.
        """
        self.metrics.events_in.labels(source.topic).inc()
        self.metrics.events_in_flight.inc()
        self.in_flight += 1
        self.acks.taken(source)
        try:
            event = decode_event(
                raw,
                max_bytes=self.settings.max_event_bytes,
                max_text_chars=self.settings.max_text_chars,
            )
        except DecodeError as exc:
            await self._dead_letter(raw, source, exc.reason, exc.detail, exc.event_id)
            return
        except Exception as exc:  # a decoder bug must not stop the partition: the event goes
            log.exception("unexpected error decoding %s[%d]@%d", *_where(source))
            await self._dead_letter(
                raw, source, DeadLetterReason.INVALID_EVENT, f"unexpected {exc!r}", None
            )
            return
        received = Received(
            event=event,
            source=source,
            # An estimate: the exact count tokenizes the text on the event loop, and the
            # model thread tokenizes it again (see stream.batching.estimate_tokens).
            tokens=estimate_tokens(event.text),
            received_at=datetime.now(UTC),
            received_mono=time.monotonic(),
        )
        await self.batcher.put(received, received.tokens)

    # --- batch -> model -> scored event -> bytes -------------------------------------------
    async def run(self) -> None:
        """Score batches until `close` is called and the queue is empty.

        Any error here (a broken model, a failed send) is fatal: `on_fatal` stops the
        worker, and whatever was not acknowledged is redelivered after a restart.
        """
        try:
            while (batch := await self.batcher.next_batch()) is not None:
                await self.process(batch)
            await self.delivery.wait_all()
        except Exception as exc:
            await self._on_fatal(exc)
            raise

    async def close(self) -> None:
        await self.batcher.close()

    async def process(self, batch: Batch[Received]) -> None:
        items = batch.items
        started_mono = time.monotonic()
        results = await self.scorer.score(
            [item.event.text for item in items], [item.event.target_emotion for item in items]
        )
        inference_s = time.monotonic() - started_mono
        self.metrics.inference_duration.observe(inference_s)
        self.metrics.batch_events.observe(len(items))
        self.metrics.batch_tokens.observe(batch.tokens)
        scored_at = datetime.now(UTC)
        futures = []
        scored: list[Received] = []
        for item, result in zip(items, results, strict=True):
            self.metrics.queue_duration.observe(max(0.0, started_mono - item.received_mono))
            if isinstance(result, Exception):
                await self._dead_letter_event(item, DeadLetterReason.SCORING_FAILED, repr(result))
                continue
            key = item.event.doc_id.encode()
            try:
                value = encode(
                    self._scored(item, result, batch, started_mono, inference_s, scored_at)
                )
            except Exception as exc:  # this event's output cannot be written: its fault alone
                await self._dead_letter_event(
                    item, DeadLetterReason.SCORING_FAILED, f"output not encodable: {exc!r}"
                )
                continue
            size = record_size(key, value, None)
            if size > self.limits.output_max_bytes:
                await self._dead_letter_event(
                    item,
                    DeadLetterReason.OUTPUT_TOO_LARGE,
                    f"scored event is {size} bytes, the output topic takes "
                    f"{self.limits.output_max_bytes}",
                )
                continue
            futures.append(await self.sink.send(self.settings.output_topic, key, value))
            scored.append(item)

        async def delivered() -> None:
            now = datetime.now(UTC)
            for item in scored:
                await self.acks.done(item.source)
                latency = (now - item.event.produced_at).total_seconds()
                self.metrics.end_to_end_latency.observe(max(0.0, latency))
            self.metrics.events_out.labels(self.settings.output_topic).inc(len(scored))
            self._progressed(len(scored))
            await self.batcher.release(len(items))

        await self.delivery.track(
            futures, delivered, f"publishing {len(futures)} scored events to "
            f"{self.settings.output_topic}"
        )  # fmt: skip

    def _scored(
        self,
        item: Received,
        result: ScoredText,
        batch: Batch[Received],
        started_mono: float,
        inference_s: float,
        scored_at: datetime,
    ) -> dict[str, object]:
        timings = {
            "produced_at": item.event.produced_at,
            "received_at": item.received_at,
            "queued_ms": round(max(0.0, started_mono - item.received_mono) * 1000, 3),
            "inference_ms": round(inference_s * 1000, 3),
            "batch_events": len(batch.items),
            "batch_tokens": batch.tokens,
        }
        return scored_event(
            item.event, result.score, self.model_info, timings, scored_at, result.extras
        )

    # --- dead letters ------------------------------------------------------------------------
    async def _dead_letter_event(
        self, item: Received, reason: DeadLetterReason, detail: str
    ) -> None:
        # The raw bytes are gone once decoded: re-encode the validated event (same content).
        raw = encode(item.event.model_dump(mode="json"))
        await self._dead_letter(raw, item.source, reason, detail, item.event.event_id)

    async def _dead_letter(
        self,
        raw: bytes | None,
        source: Source,
        reason: DeadLetterReason,
        detail: str,
        event_id: str | None,
    ) -> None:
        log.info(
            "dead-lettering %s[%d]@%d: %s: %s",
            source.topic,
            source.partition,
            source.offset,
            reason.value,
            detail,
        )
        what = (
            f"dead-lettering {source.topic}[{source.partition}]@{source.offset} ({reason.value}) "
            f"to {self.settings.dead_letter_topic}"
        )
        try:
            record = dead_letter_record(
                raw,
                reason,
                detail,
                topic=source.topic,
                partition=source.partition,
                offset=source.offset,
                timestamp_ms=source.timestamp_ms,
                key=source.key,
                event_id=event_id,
                max_bytes=self.limits.dead_letter_max_bytes,
            )
            future = await self.sink.send(
                self.settings.dead_letter_topic, record.key, record.value, record.headers
            )
        except Exception as exc:  # nowhere to put the event: stop rather than skip it
            raise DeliveryFailed(f"{what} failed: {exc!r}") from exc

        async def delivered() -> None:
            await self.acks.done(source)
            self.metrics.events_dead_lettered.labels(reason.value).inc()
            self._progressed(1)

        await self.delivery.track([future], delivered, what)
