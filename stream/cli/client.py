"""Small Kafka clients for people and tests: send editor events, read scored events."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.codec import decode_event
from stream.config import Settings
from stream.errors import DecodeError


def editor_event(
    text: str,
    *,
    doc_id: str = "doc-1",
    user_id: str = "user-1",
    revision: int = 1,
    target_emotion: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A well-formed editor event (schema v1) for `text`, stamped now."""
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id or str(uuid.uuid4()),
        "doc_id": doc_id,
        "user_id": user_id,
        "revision": revision,
        "text": text,
        "produced_at": datetime.now(UTC).isoformat(),
        "lang": "en",
    }
    if target_emotion:
        event["target_emotion"] = target_emotion
    return event


@dataclass(frozen=True, slots=True)
class RejectedLine:
    line: int  # 1-based line number in the file
    reason: str  # the dead-letter reason the worker would give it
    detail: str


def read_event_file(
    path: Path, settings: Settings
) -> tuple[list[dict[str, Any]], list[RejectedLine]]:
    """Every non-blank line of a JSONL file checked with the worker's own contract
    (`stream.codec.decode_event`): the valid events, and the rejected lines with why."""
    events: list[dict[str, Any]] = []
    rejected: list[RejectedLine] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            raw = line.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                decode_event(
                    raw, max_bytes=settings.max_event_bytes, max_text_chars=settings.max_text_chars
                )
            except DecodeError as exc:
                rejected.append(RejectedLine(number, exc.reason.value, exc.detail))
                continue
            events.append(orjson.loads(raw))
    return events, rejected


def _encode(event: dict[str, Any] | bytes) -> tuple[bytes | None, bytes]:
    if isinstance(event, bytes):
        return None, event
    key = event.get("doc_id")
    return (key.encode() if isinstance(key, str) else None), orjson.dumps(event)


async def send_events(
    settings: Settings,
    events: Iterable[dict[str, Any] | bytes],
    topic: str | None = None,
    restamp: bool = True,
) -> int:
    """Produce events (dicts are JSON-encoded and keyed by doc_id; bytes go as they are).

    With `restamp`, `produced_at` is set to the send time so latency reads true.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=5,
        max_request_size=8 * 1024 * 1024,
        **settings.kafka_client_options(),
    )
    await producer.start()
    count = 0
    try:
        futures = []
        for event in events:
            if restamp and isinstance(event, dict) and "produced_at" in event:
                event = {**event, "produced_at": datetime.now(UTC).isoformat()}
            key, value = _encode(event)
            futures.append(await producer.send(topic or settings.input_topic, value, key=key))
            count += 1
            if len(futures) >= 1000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


async def read_topic(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = True,
    idle_timeout_s: float | None = 10.0,
    max_records: int | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield records of `topic` as dicts, decoded JSON under "value" plus their coordinates.

    Stops after `max_records`, or after `idle_timeout_s` with nothing new (None: never).
    Uses no consumer group, so reading never moves anyone's offsets.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    seen = 0
    last = time.monotonic()
    try:
        while max_records is None or seen < max_records:
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            if not batches:
                if idle_timeout_s is not None and time.monotonic() - last > idle_timeout_s:
                    return
                continue
            last = time.monotonic()
            for records in batches.values():
                for record in records:
                    seen += 1
                    yield {
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "key": record.key.decode("utf-8", "replace") if record.key else None,
                        "value": orjson.loads(record.value),
                    }
    finally:
        await consumer.stop()
