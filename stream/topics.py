"""Create Valence's Kafka topics with chosen partition counts.

faust does not create an agent's source topic with a chosen partition count, and a topic
auto-created by the broker gets its default count, so topics are created here first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from stream.config import Settings
from stream.errors import ValenceError

log = logging.getLogger(__name__)


async def ensure_topics(
    settings: Settings, names_and_partitions: Mapping[str, int], timeout_s: float = 30.0
) -> list[str]:
    """Create the missing topics; return the names created (idempotent).

    Existing topics are left as they are (a smaller partition count is only logged).
    Returns once the metadata names a leader for every partition of every named topic,
    and for topics created here, once each partition's leader answers for it (a producer
    sending earlier gets NOT_LEADER and prints its retries).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.app_id}-admin",
        **settings.kafka_client_options(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = {n: p for n, p in names_and_partitions.items() if n not in existing}
        created = await _create(admin, missing, settings.topic_replication)
        await _wait_for_leaders(admin, names_and_partitions, timeout_s)
        if created:
            await _wait_until_served(settings, {n: missing[n] for n in created}, timeout_s)
        return created
    finally:
        await admin.close()


def create_topics(
    settings: Settings, topics: Mapping[str, int], timeout_s: float = 30.0
) -> list[str]:
    """Blocking `ensure_topics`, for the CLI and for code outside an event loop."""
    return asyncio.run(ensure_topics(settings, topics, timeout_s))


class BrokerUnreachable(ValenceError):
    """No bootstrap server accepted a connection with these settings; the message says why
    (refused, TLS, authentication)."""


async def check_connection(settings: Settings, timeout_s: float = 15.0) -> None:
    """Connect to the bootstrap servers once, as the clients will (TLS, SASL), so that a
    wrong password or certificate is reported as such, not as a failed bootstrap."""
    from aiokafka.conn import create_conn

    options = settings.kafka_client_options()
    errors = []
    for server in settings.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **options),
                timeout_s,
            )
        except Exception as exc:  # refused, TLS, authentication: all reported below
            errors.append(f"{server.strip()}: {type(exc).__name__}: {exc}")
            continue
        conn.close()
        return
    who = (
        f" as {settings.sasl_username} ({settings.sasl_mechanism})"
        if settings.security_protocol.startswith("SASL")
        else ""
    )
    raise BrokerUnreachable(
        f"cannot connect over {settings.security_protocol}{who}: {'; '.join(errors)}"
    )


class TopicMissing(ValenceError):
    """A topic the worker must write to does not exist (and it was not asked to create it)."""


async def max_message_bytes(settings: Settings, topics: Sequence[str]) -> dict[str, int | None]:
    """Each topic's `max.message.bytes` as the broker enforces it (the topic's own value or
    the broker default); None where the broker would not say (e.g. not authorised).

    Raises `TopicMissing` for a topic that does not exist.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=f"{settings.app_id}-admin",
        **settings.kafka_client_options(),
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        for topic in topics:
            if topic not in existing:
                raise TopicMissing(f"topic {topic!r} does not exist")
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": None})
            for topic in topics
        ]
        limits: dict[str, int | None] = dict.fromkeys(topics)
        for response in await admin.describe_configs(resources):
            for code, message, _type, name, entries, *_ in response.resources:
                if code != 0:
                    log.warning("cannot read the configuration of topic %s: %s", name, message)
                    continue
                for entry in entries:
                    if entry[0] == "max.message.bytes" and entry[1] is not None:
                        limits[name] = int(entry[1])
        return limits
    finally:
        await admin.close()


def read_message_limits(settings: Settings, topics: Sequence[str]) -> dict[str, int | None]:
    """Blocking `max_message_bytes`."""
    return asyncio.run(max_message_bytes(settings, topics))


async def _create(
    admin: AIOKafkaAdminClient, missing: Mapping[str, int], replication: int
) -> list[str]:
    if not missing:
        return []
    new = [NewTopic(name, partitions, replication) for name, partitions in missing.items()]
    try:
        response = await admin.create_topics(new)
    except TopicAlreadyExistsError:  # another process created them meanwhile
        return []
    created = []
    for topic, code, *message in response.topic_errors:
        if code == 0:
            created.append(topic)
        elif code != TopicAlreadyExistsError.errno:
            raise for_code(code)(f"creating topic {topic!r}: {message[0] if message else ''}")
    return created


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, wanted: Mapping[str, int], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    described = await admin.describe_topics(list(wanted))
    _warn_if_fewer_partitions(described, wanted)
    while not all(_has_leaders(topic) for topic in described):
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics {sorted(wanted)} have no leaders after {timeout_s:g}s")
        await asyncio.sleep(0.2)
        described = await admin.describe_topics(list(wanted))


async def _wait_until_served(
    settings: Settings, topics: Mapping[str, int], timeout_s: float
) -> None:
    """Until every partition's leader answers a ListOffsets request for it. The partitions
    are the ones asked for, not the ones the consumer's first metadata names: that can be
    short of a partition still being created, which a producer then meets as NOT_LEADER."""
    deadline = time.monotonic() + timeout_s
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        **settings.kafka_client_options(),
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic, count in topics.items()
            for partition in range(count)
        ]
        while True:
            try:
                await consumer.end_offsets(partitions)
                return
            except KafkaError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


def _has_leaders(topic: dict[str, Any]) -> bool:
    partitions = topic["partitions"]
    if topic["error_code"] != 0 or not partitions:
        return False
    return all(partition["leader"] >= 0 for partition in partitions)


def _warn_if_fewer_partitions(described: list[dict[str, Any]], wanted: Mapping[str, int]) -> None:
    for topic in described:
        have, want = len(topic["partitions"]), wanted.get(topic["topic"], 0)
        if 0 < have < want:
            log.warning(
                "topic %s has %d partitions, fewer than the %d asked for; left as it is",
                topic["topic"], have, want,
            )  # fmt: skip
