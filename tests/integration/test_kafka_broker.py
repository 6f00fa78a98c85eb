"""The session broker is a real Kafka: topics, partitions, produce and consume all work."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from deploy.kafka import launcher
from stream.config import Settings
from stream.topics import create_topics, ensure_topics

MESSAGES = 100


async def _produce(settings: Settings, topic: str) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, **settings.kafka_client_options()
    )
    await producer.start()
    try:
        for i in range(MESSAGES):
            await producer.send(topic, value=str(i).encode(), key=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(settings: Settings, topic: str) -> list[tuple[int, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"it-{topic}",
        auto_offset_reset="earliest",
        **settings.kafka_client_options(),
    )
    await consumer.start()
    got: list[tuple[int, bytes]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(got) < MESSAGES and loop.time() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            got += [(m.partition, m.value or b"") for ms in batches.values() for m in ms]
        await consumer.commit()
    finally:
        await consumer.stop()
    return got


def test_produce_and_consume_round_trip(kafka: Settings) -> None:
    topic = f"it-broker-{uuid.uuid4().hex[:8]}"
    assert create_topics(kafka, {topic: 3}) == [topic]

    asyncio.run(_produce(kafka, topic))
    got = asyncio.run(_consume(kafka, topic))

    assert sorted(int(value) for _, value in got) == list(range(MESSAGES))
    assert {partition for partition, _ in got} == {0, 1, 2}


def test_ensure_topics_is_idempotent(kafka: Settings) -> None:
    topic = f"it-idem-{uuid.uuid4().hex[:8]}"
    assert asyncio.run(ensure_topics(kafka, {topic: 2})) == [topic]
    assert asyncio.run(ensure_topics(kafka, {topic: 2})) == []


def test_status_and_start_are_idempotent(kafka: Settings) -> None:
    before = launcher.status(kafka)
    assert before.running
    assert before.pid is not None
    assert before.bootstrap == kafka.bootstrap_servers
    assert before.version == kafka.kafka_version
    assert before.log_file.is_file()

    again = launcher.start(kafka)

    assert again == before
