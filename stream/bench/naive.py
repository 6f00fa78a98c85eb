"""The floor: the consumer everyone writes first. One event in, one model call, one event out.

A plain aiokafka consumer in a consumer group; each event is decoded, scored alone (one
`Scorer.score([text])` call, on the event loop), turned into the same scored-event contract
as the worker's, and handed to the producer without waiting for the broker (acks=all, linger
5 ms, as `valence send` uses). The model is what a user would load without Valence's
serving work: the transformers network in torch fp32, whatever the worker's `backend` and
`precision` settings say, and no segment cache. Input, output and the scored-event contract
are the worker's, so the difference measured is the worker's batching, scheduling and CPU
backend together.

Run as ``python -m stream.bench.naive`` with `VALENCE_*` settings; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from models.base import Scorer
from stream.codec import decode_event, encode, scored_event
from stream.config import Settings
from stream.errors import DecodeError
from stream.factory import load_configured_scorer

log = logging.getLogger(__name__)
READY = "naive consumer ready"


async def consume(settings: Settings, scorer: Scorer, stop: asyncio.Event) -> int:
    consumer = AIOKafkaConsumer(
        settings.input_topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=settings.app_id,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
        **settings.kafka_client_options(),
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        linger_ms=5,
        **settings.kafka_client_options(),
    )
    await producer.start()
    await consumer.start()
    scored = 0
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.1)
        print(READY, flush=True)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    received_at = datetime.now(UTC)
                    try:
                        event = decode_event(
                            record.value,
                            max_bytes=settings.max_event_bytes,
                            max_text_chars=settings.max_text_chars,
                        )
                    except DecodeError:
                        continue
                    started = time.monotonic()
                    score = scorer.score([event.text])[0]
                    inference_ms = round((time.monotonic() - started) * 1000, 3)
                    timings = {
                        "produced_at": event.produced_at,
                        "received_at": received_at,
                        "queued_ms": 0.0,
                        "inference_ms": inference_ms,
                        "batch_events": 1,
                        "batch_tokens": score.tokens,
                    }
                    payload = scored_event(event, score, scorer.info, timings, datetime.now(UTC))
                    await producer.send(
                        settings.output_topic, encode(payload), key=event.doc_id.encode()
                    )
                    scored += 1
    finally:
        await producer.stop()  # flushes what was sent
        await consumer.stop()
    return scored


def main() -> int:
    settings = Settings()
    logging.basicConfig(level=settings.log_level)
    scorer = load_configured_scorer(
        settings, backend="torch", precision="fp32", segment_cache_size=0
    )
    scorer.warmup()

    async def run() -> int:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        return await consume(settings, scorer, stop)

    scored = asyncio.run(run())
    log.info("naive consumer scored %d events", scored)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
