"""Editor events -> the input topic, answered only once the broker acknowledged them.

The producer runs with acks=all and idempotence, so an event the gateway answered 202 for
is on every in-sync replica; a send that fails is answered 503 and the client resends (the
worker's consumers dedupe on event_id, as for any at-least-once producer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka import AIOKafkaProducer

from stream.config import Settings


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where the broker stored one event."""

    partition: int
    offset: int


class EventProducer(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send_all(self, records: Sequence[tuple[bytes, bytes]]) -> list[Delivered]:
        """Produce (key, value) records; return once the broker acknowledged every one.

        Raises when any record was not acknowledged (the caller answers with an error for
        the whole request: the client resends, consumers dedupe on event_id).
        """
        ...

    def ready(self) -> bool: ...


class KafkaEventProducer:
    """`EventProducer` over aiokafka, producing to the settings' input topic."""

    def __init__(self, settings: Settings):
        self._topic = settings.input_topic
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            client_id=f"{settings.app_id}-gateway",
            acks="all",
            enable_idempotence=True,
            # An editor waits for the answer: do not hold records back to fill batches.
            linger_ms=0,
            max_request_size=max(1_048_576, settings.max_event_bytes + 4096),
            **settings.kafka_client_options(),
        )
        self._started = False

    async def start(self) -> None:
        await self._producer.start()
        self._started = True

    async def stop(self) -> None:
        self._started = False
        await self._producer.stop()

    def ready(self) -> bool:
        return self._started

    async def send_all(self, records: Sequence[tuple[bytes, bytes]]) -> list[Delivered]:
        futures = [await self._producer.send(self._topic, value, key=key) for key, value in records]
        metadata = await asyncio.gather(*futures)
        return [Delivered(partition=m.partition, offset=m.offset) for m in metadata]
