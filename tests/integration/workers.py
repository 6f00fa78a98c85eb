"""Run `valence worker` as a real child process against the test broker."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from pydantic import SecretStr

from stream.cli.client import read_topic
from stream.config import Settings
from stream.topics import create_topics


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_settings(kafka: Settings, **overrides: Any) -> Settings:
    """Fresh topics and consumer group per test, so tests never see each other's events."""
    tag = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        **kafka.model_dump(exclude_none=True),
        "app_id": f"valence-test-{tag}",
        "input_topic": f"in-{tag}",
        "output_topic": f"out-{tag}",
        "dead_letter_topic": f"dlq-{tag}",
        "http_port": free_port(),
        "topic_partitions": 3,
        "commit_interval_s": 0.5,
        **overrides,
    }
    settings = Settings(**values)
    create_topics(
        settings, {settings.input_topic: 3, settings.output_topic: 3, settings.dead_letter_topic: 1}
    )
    return settings


WORKER_COMMAND = ("-m", "stream.cli.main", "worker")


@dataclass
class WorkerProcess:
    settings: Settings
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    command: tuple[str, ...] = WORKER_COMMAND  # python arguments
    env: dict[str, str] = field(default_factory=dict)  # more environment, e.g. faust's own

    def start(self) -> WorkerProcess:
        env = dict(os.environ)
        for name, value in self.settings.model_dump(exclude_none=True).items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"VALENCE_{name.upper()}"] = str(value)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(
            [sys.executable, *self.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        return self

    def http(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.settings.http_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def http_ready(self) -> bool:
        """Whether /ready answers 200 now (False while starting)."""
        try:
            return self.http("/ready")[0] == 200
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.assert_alive()
            try:
                if self.http("/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"worker not ready in {timeout_s}s:\n{self.log_tail()}")

    def assert_alive(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"worker exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout_s: float = 120.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait_exit(self, timeout_s: float) -> int:
        """The exit status, failing the test when the worker is still running after
        `timeout_s` (a hang)."""
        try:
            return self.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"worker still running {timeout_s}s later:\n{self.log_tail()}"
            ) from None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def collect(
    settings: Settings,
    topic: str,
    until: Iterable[str] | None = None,
    count: int | None = None,
    timeout_s: float = 180.0,
) -> list[dict[str, Any]]:
    """Read `topic` from the start until every id in `until` (or `count` records) is seen."""
    wanted = set(until or ())

    async def read() -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        seen: set[str] = set()
        deadline = time.monotonic() + timeout_s
        async for record in read_topic(settings, topic, idle_timeout_s=timeout_s):
            records.append(record)
            event_id = record["value"].get("event_id")
            if event_id:
                seen.add(event_id)
            if (wanted and wanted <= seen) or (count is not None and len(records) >= count):
                break
            if time.monotonic() > deadline:
                break
        return records

    return asyncio.run(read())


def read_to_end(settings: Settings, topic: str) -> list[dict[str, Any]]:
    """Every record of `topic` up to its end offsets as of now (no idle guessing)."""

    async def read() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            **settings.kafka_client_options(),
        )
        await consumer.start()
        try:
            partitions = [
                TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            records: list[dict[str, Any]] = []
            deadline = time.monotonic() + 120
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                assert time.monotonic() < deadline, f"could not read {topic} to its end"
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                for batch in batches.values():
                    records.extend(
                        {
                            "partition": r.partition,
                            "offset": r.offset,
                            # The producer's create time, or the broker's append time where
                            # the topic says LogAppendTime (timestamp_type 1).
                            "timestamp": r.timestamp,
                            "timestamp_type": r.timestamp_type,
                            "key": r.key.decode("utf-8", "replace") if r.key else None,
                            "value": orjson.loads(r.value),
                        }
                        for r in batch
                        if r.offset < ends[TopicPartition(r.topic, r.partition)]
                    )
            return records
        finally:
            await consumer.stop()

    return asyncio.run(read())


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.1)
    raise AssertionError(f"topic {topic} has no partitions")


def committed_offsets(settings: Settings) -> dict[int, int]:
    """The worker group's committed offsets on the input topic, per partition."""

    async def read() -> dict[int, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(settings.app_id)
        finally:
            await admin.close()
        return {
            tp.partition: meta.offset
            for tp, meta in offsets.items()
            if tp.topic == settings.input_topic and meta.offset >= 0
        }

    return asyncio.run(read())


def set_topic_config(settings: Settings, topic: str, configs: dict[str, str]) -> None:
    async def alter() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        await admin.start()
        try:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
        finally:
            await admin.close()

    asyncio.run(alter())


def wait_for_ids(
    settings: Settings,
    expected: set[str],
    worker: WorkerProcess | None = None,
    timeout_s: float = 240.0,
) -> tuple[Counter[str], list[dict[str, Any]]]:
    """Poll both topics until every expected id is in one of them; fails early when the
    worker (expected to carry on) exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        outputs = read_to_end(settings, settings.output_topic)
        scored = Counter(r["value"]["event_id"] for r in outputs)
        letters = [r["value"] for r in read_to_end(settings, settings.dead_letter_topic)]
        arrived = set(scored) | {letter["event_id"] for letter in letters}
        if expected <= arrived:
            return scored, letters
        if worker is not None:
            worker.assert_alive()
        missing = expected - arrived
        assert time.monotonic() < deadline, f"{len(missing)} never arrived: {sorted(missing)[:5]}"
        time.sleep(1.0)
