"""The scoring pipeline: bytes -> event -> batch -> model -> scored event -> bytes.

The faust agent feeds `submit` with each raw message and an `ack` callback; `run` turns
batches into published records. Every input ends in exactly one of: a scored event, a
dead letter, or no acknowledgement at all (the worker stopped; it will be redelivered).

Delivery semantics (at-least-once): an input is acknowledged to faust only after its
output record (or its dead letter) is acknowledged by the broker, and acknowledgements reach
faust in offset order per partition (stream/acks.py: faust itself would commit past an
unacknowledged offset when acks come out of order); faust commits the acknowledged prefix
every `commit_interval_s` and on a clean stop. A crash replays everything after the last
commit: consumers dedupe on `event_id`.

Order: the batcher may let a short event overtake a long one of another document, but one
document's events are published in the order they were consumed (stream/batching.py). On
the CPU a second lane (the express lane) scores short events that want no suggestions or
attributions in a model call beside the main one; a document whose batch is in one lane
waits for it before its next event may go to the other.
A long document (over `batch_split_tokens`; by default on the CPU only) is scored in
pieces, each alone in a model call, with other events admitted between them; its scored
event is built from the pieces' scores (`Scorer.combine`, the same score as in one call) and
published when the last piece is scored. Events whose suggestions or attributions are
wanted are never split: those need the whole text in one job.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from models.base import ModelInfo, TextScore
from schemas.events import DeadLetterReason, EditorEvent
from stream.acks import Ack, OrderedAcks
from stream.batching import (
    CHARS_PER_TOKEN,
    Batch,
    MicroBatcher,
    batch_policy,
    estimate_tokens,
    split_tokens,
)
from stream.codec import dead_letter_record, decode_event, encode, record_size, scored_event
from stream.config import Settings
from stream.errors import DecodeError, DeliveryFailed
from stream.metrics import ValenceMetrics
from stream.publishing import Delivery, Sink
from stream.scoring import BatchScorer, ScoredText

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a raw message came from: enough to dead-letter it and to acknowledge it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    ack: Ack


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
    split: Split | None = None


@dataclass(slots=True)
class Split:
    """A long event scored in pieces: the pieces' spans and, as they come, their scores."""

    spans: list[tuple[int, int]]
    parts: list[TextScore | None] = field(default_factory=list)
    failed: bool = False

    def __post_init__(self) -> None:
        self.parts = [None] * len(self.spans)


@dataclass(frozen=True, slots=True)
class Piece:
    """One piece of a split event, queued for the model like an event."""

    owner: Received
    index: int
    text: str


Queued = Received | Piece


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
        self.batcher: MicroBatcher[Queued] = MicroBatcher(
            batch_policy(settings, self.model_info.device),
            max_pending=settings.max_in_flight_events,
        )
        self.split_tokens = split_tokens(settings, self.model_info.device)
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
        self.acks.expect((source.topic, source.partition), source.offset)
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
        spans = self._pieces(received)
        if not spans:
            await self.batcher.put(
                received, received.tokens, key=event.doc_id, express=self._express_ok(event)
            )
            return
        received = replace(received, split=Split(spans))
        for index, (start, end) in enumerate(spans):
            text = event.text[start:end]
            piece = Piece(received, index, text)
            await self.batcher.put(piece, estimate_tokens(text), key=event.doc_id, alone=True)

    def _express_ok(self, event: EditorEvent) -> bool:
        """May the event go to the express lane? Not when the recommendation step has work
        for it: that step runs in one thread at a time."""
        if self.scorer.step is None:
            return True
        extras = self.settings.suggestions == "all" or self.settings.attribution
        return not extras and event.target_emotion is None

    def _pieces(self, received: Received) -> list[tuple[int, int]]:
        """Spans to score the event in, one model call each; [] to score it whole."""
        limit = self.split_tokens
        if not limit or received.tokens <= limit:
            return []
        event = received.event
        extras = self.settings.suggestions == "all" or self.settings.attribution
        if self.scorer.step is not None and (extras or event.target_emotion is not None):
            return []
        try:
            return self.scorer.scorer.split(event.text, round(limit * CHARS_PER_TOKEN))
        except Exception:  # splitting is an optimisation: score the event whole instead
            log.exception("could not split event %s; scoring it whole", event.event_id)
            return []

    # --- batch -> model -> scored event -> bytes -------------------------------------------
    async def run(self) -> None:
        """Score batches until `close` is called and the queue is empty.

        Any error here (a broken model, a failed send) is fatal: `on_fatal` stops the
        worker, and whatever was not acknowledged is redelivered after a restart.
        """
        try:
            lanes = [asyncio.ensure_future(self._lane(express=False))]
            if self.batcher.express:
                lanes.append(asyncio.ensure_future(self._lane(express=True)))
            try:
                await asyncio.gather(*lanes)
            finally:
                for lane in lanes:  # one lane failed: the other stops too
                    lane.cancel()
            await self.delivery.wait_all()
        except Exception as exc:
            await self._on_fatal(exc)
            raise

    async def _lane(self, *, express: bool) -> None:
        take = self.batcher.next_batch_express if express else self.batcher.next_batch
        while (batch := await take()) is not None:
            await self.process(batch)
            await self.batcher.finish(batch)

    async def close(self) -> None:
        await self.batcher.close()

    async def process(self, batch: Batch[Queued]) -> None:
        items = batch.items
        started_mono = time.monotonic()
        results = await self.scorer.score(
            [item.text if isinstance(item, Piece) else item.event.text for item in items],
            [None if isinstance(item, Piece) else item.event.target_emotion for item in items],
            express=batch.express,
        )
        inference_s = time.monotonic() - started_mono
        self.metrics.inference_duration.observe(inference_s)
        self.metrics.batch_events.observe(len(items))
        self.metrics.batch_tokens.observe(batch.tokens)
        scored_at = datetime.now(UTC)
        futures = []
        scored: list[Received] = []
        for queued, scored_or_error in zip(items, results, strict=True):
            done = await self._whole_event(queued, scored_or_error)
            if done is None:
                continue  # a piece of an event still being scored (or already dead-lettered)
            item, result = done
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
                await self._acknowledge(item.source)
                latency = (now - item.event.produced_at).total_seconds()
                self.metrics.end_to_end_latency.observe(max(0.0, latency))
            self.metrics.events_out.labels(self.settings.output_topic).inc(len(scored))
            self._progressed(len(scored))
            await self.batcher.release(len(items))

        await self.delivery.track(
            futures, delivered, f"publishing {len(futures)} scored events to "
            f"{self.settings.output_topic}"
        )  # fmt: skip

    async def _whole_event(
        self, queued: Queued, result: ScoredText | Exception
    ) -> tuple[Received, ScoredText | Exception] | None:
        """An event and its result, once complete: a piece completes its event when it is
        the last one scored; a failed piece fails the event (dead-lettered once)."""
        if not isinstance(queued, Piece):
            return queued, result
        owner = queued.owner
        split = owner.split
        assert split is not None
        if split.failed:
            return None
        if isinstance(result, Exception):
            split.failed = True
            return owner, result
        split.parts[queued.index] = result.score
        if any(part is None for part in split.parts):
            return None
        try:
            parts = [
                (start, part)
                for (start, _), part in zip(split.spans, split.parts, strict=True)
                if part is not None
            ]
            return owner, ScoredText(self.scorer.scorer.combine(owner.event.text, parts))
        except Exception as exc:
            split.failed = True
            return owner, exc

    def _scored(
        self,
        item: Received,
        result: ScoredText,
        batch: Batch[Queued],
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

    async def _acknowledge(self, source: Source) -> None:
        await self.acks.done((source.topic, source.partition), source.offset, source.ack)

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
            await self._acknowledge(source)
            self.metrics.events_dead_lettered.labels(reason.value).inc()
            self._progressed(1)

        await self.delivery.track([future], delivered, what)
