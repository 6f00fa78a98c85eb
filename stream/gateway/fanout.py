"""One reader of the output topic per gateway process, fanned out to the streams of each doc.

The reader joins no consumer group: it assigns itself every partition of the output topic
and starts at the end, so each gateway replica sees every scored event (replicas work side
by side; a client may connect to any of them) and no replica moves anyone's offsets. A
stream therefore sees the scored events published after it connected, not older ones.
Records are routed by their key (the worker keys scored events by doc_id) without parsing
them. Each stream has a bounded queue: a client that falls `queue_size` events behind is
dropped (it reconnects) so one slow browser never delays the others.

"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from stream.config import Settings
from stream.metrics import GatewayMetrics

log = logging.getLogger(__name__)


class Subscription:
    """One open stream: scored events of one document, in arrival order."""

    def __init__(self, doc_id: str, queue_size: int):
        self.doc_id = doc_id
        # None marks "dropped": the client fell behind and its stream ends with an error.
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_size + 1)
        self.queue_size = queue_size

    async def next(self, timeout_s: float | None = None) -> bytes | None:
        """The next scored event; None when `timeout_s` passed without one.

        Raises `SlowClientError` once the client fell `queue_size` events behind.
        """
        try:
            value = await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None
        if value is None:
            raise SlowClientError(f"client fell {self.queue_size} scored events behind")
        return value

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            value = await self.next()
            if value is not None:
                yield value


class SlowClientError(Exception):
    pass


class Fanout:
    """The registry of open streams per doc_id; `publish` hands a record to each."""

    def __init__(self, metrics: GatewayMetrics, queue_size: int):
        self._metrics = metrics
        self._queue_size = queue_size
        self._streams: dict[str, set[Subscription]] = defaultdict(set)

    @contextlib.contextmanager
    def subscribe(self, doc_id: str) -> Iterator[Subscription]:
        subscription = Subscription(doc_id, self._queue_size)
        self._streams[doc_id].add(subscription)
        try:
            yield subscription
        finally:
            streams = self._streams.get(doc_id)
            if streams is not None:
                streams.discard(subscription)
                if not streams:
                    del self._streams[doc_id]

    def publish(self, doc_id: str, value: bytes) -> None:
        for subscription in self._streams.get(doc_id, ()):
            if subscription.queue.qsize() >= subscription.queue_size:
                if not subscription.queue.full():
                    subscription.queue.put_nowait(None)
                    self._metrics.slow_clients_dropped.inc()
                continue
            subscription.queue.put_nowait(value)
            self._metrics.scored_events_pushed.inc()

    def stream_count(self) -> int:
        return sum(len(streams) for streams in self._streams.values())


class ScoredSource(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ready(self) -> bool: ...


class OutputTopicReader:
    """Reads the output topic (all partitions, from the end, no group) into a `Fanout`."""

    def __init__(self, settings: Settings, fanout: Fanout, metrics: GatewayMetrics):
        self._topic = settings.output_topic
        self._fanout = fanout
        self._metrics = metrics
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.app_id}-gateway-fanout",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=50,  # an editor waits for these: do not sit on a fetch
            **settings.kafka_client_options(),
        )
        self._task: asyncio.Task[None] | None = None
        self._positioned = False

    async def start(self, timeout_s: float = 30.0) -> None:
        """Take every partition and resolve the end offsets before returning, so a stream
        opened after `start` sees every scored event published after it opened."""
        await self._consumer.start()
        # Without a group, subscribing assigns every partition of the topic to this reader.
        self._consumer.subscribe([self._topic])
        assigned = await self._assignment(timeout_s)
        await self._consumer.seek_to_end(*assigned)
        for partition in assigned:
            await self._consumer.position(partition)
        self._positioned = True
        log.info("reading %s (%d partitions) from the end", self._topic, len(assigned))
        self._task = asyncio.ensure_future(self._run())
        self._task.add_done_callback(self._log_end)

    def _log_end(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("reading %s stopped: %r (/ready now fails)", self._topic, task.exception())

    async def _assignment(self, timeout_s: float) -> list[TopicPartition]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self._consumer.assignment():
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"output topic {self._topic!r} not found in {timeout_s:g}s")
            await asyncio.sleep(0.1)
        return sorted(self._consumer.assignment())

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000, max_records=1000)
            for records in batches.values():
                for record in records:
                    self._metrics.scored_events_received.inc()
                    if record.key is not None and record.value is not None:
                        self._fanout.publish(record.key.decode("utf-8", "replace"), record.value)

    def ready(self) -> bool:
        return self._positioned and self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._consumer.stop()
