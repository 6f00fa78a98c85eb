"""Scored event bytes -> the broker, and only then the input offset.

`Sink.send` hands one record to the producer and returns its delivery future without
waiting for it; `Delivery` waits for a whole batch's futures in the background and runs
the acknowledgement callbacks only after every record of the batch is acknowledged by the
broker (producer acks=all). A failed delivery never acknowledges its input: the worker
stops and the input is redelivered after a restart (at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from stream.errors import DeliveryFailed

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class Sink(Protocol):
    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> Awaitable[Any]:
        """Queue one record; return a future resolved when the broker acknowledged it."""
        ...


class FaustSink:
    """A `Sink` over the faust app's own aiokafka producer (acks=all, flushed before every
    offset commit by faust)."""

    def __init__(self, app: Any):
        self._app = app

    async def send(
        self, topic: str, key: bytes | None, value: bytes, headers: Headers | None = None
    ) -> Awaitable[Any]:
        return await self._app.producer.send(
            topic, key, value, partition=None, timestamp=None, headers=headers
        )


class Delivery:
    """Tracks batches whose records are on their way; bounded so a slow broker slows intake."""

    def __init__(
        self, on_failure: Callable[[BaseException], Awaitable[None]], max_batches: int = 4
    ):
        self._on_failure = on_failure
        self._slots = asyncio.Semaphore(max_batches)
        self._tasks: set[asyncio.Task[None]] = set()

    async def track(
        self,
        futures: Sequence[Awaitable[Any]],
        on_delivered: Callable[[], Awaitable[None]],
        what: str = "publishing",
    ) -> None:
        """Wait (in the background) for `futures`, then call `on_delivered`. `what` names the
        records in the error that stops the worker when a delivery fails."""
        await self._slots.acquire()
        task = asyncio.ensure_future(self._complete(futures, on_delivered, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _complete(
        self,
        futures: Sequence[Awaitable[Any]],
        on_delivered: Callable[[], Awaitable[None]],
        what: str,
    ) -> None:
        try:
            await asyncio.gather(*futures)
        except Exception as exc:
            failure = DeliveryFailed(f"{what} failed, inputs stay unacknowledged: {exc!r}")
            failure.__cause__ = exc
            await self._on_failure(failure)
            return
        finally:
            self._slots.release()
        try:
            await on_delivered()
        except Exception as exc:  # acknowledging failed: stop rather than leave it pending
            await self._on_failure(exc)

    async def wait_all(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
