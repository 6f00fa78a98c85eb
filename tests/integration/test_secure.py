"""`valence kafka start --secure`: a SASL_SSL listener (SCRAM-SHA-512, TLS certificate from
a local CA). Its own broker, beside the session's plaintext one."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from deploy.kafka import launcher, secure
from stream.cli.client import editor_event, send_events
from stream.config import Settings
from tests.integration.workers import WorkerProcess, collect, isolated_settings


def _free_port_triple() -> int:
    """Broker, controller and secure listener ports, consecutive and free."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        free = True
        for candidate in (port, port + 1, port + 2):
            with socket.socket() as probe:
                free = free and probe.connect_ex(("127.0.0.1", candidate)) != 0
        if free and port + 2 < 65536:
            return port
    raise RuntimeError("no three consecutive free ports")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    port = _free_port_triple()
    settings = Settings(
        state_dir=tmp_path_factory.mktemp("secure-state"),
        kafka_port=port,
        bootstrap_servers=f"127.0.0.1:{port}",
    )
    launcher.start(settings, secure=True)
    try:
        yield settings
    finally:
        launcher.stop(settings)


def _client(broker: Settings, password: str | None = None) -> Settings:
    return broker.model_copy(
        update={
            "bootstrap_servers": f"127.0.0.1:{secure.secure_port(broker)}",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": secure.user(broker),
            "sasl_password": SecretStr(password or secure.password(broker)),
            "ssl_cafile": secure.secure_dir(broker) / "ca.pem",
        }
    )


def test_worker_scores_end_to_end_over_tls_with_the_right_credentials(
    broker: Settings, tmp_path: Path
) -> None:
    settings = isolated_settings(_client(broker))
    events = [editor_event(f"I love this, take {i}!", event_id=f"tls-{i}") for i in range(5)]
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_ready()
        asyncio.run(send_events(settings, events))
        scored = collect(settings, settings.output_topic, until={e["event_id"] for e in events})
    finally:
        worker.stop()
    assert {r["value"]["event_id"] for r in scored} == {e["event_id"] for e in events}
    assert "SASL_SSL" in worker.log_text()


def test_wrong_password_stops_the_worker_in_seconds_with_one_line(
    broker: Settings, tmp_path: Path
) -> None:
    settings = _client(broker, password="not-the-password")
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    started = time.monotonic()
    try:
        code = worker.wait_exit(60)
    finally:
        worker.stop()
    assert code != 0
    assert time.monotonic() - started < 30, "fails before loading the model"
    failures = [line for line in worker.log_text().splitlines() if "cannot start" in line]
    assert len(failures) == 1 and "SaslAuthenticationFailed" in failures[0], worker.log_tail()


def test_a_plaintext_client_is_refused_on_the_secure_port(broker: Settings) -> None:
    async def connect() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=f"127.0.0.1:{secure.secure_port(broker)}", request_timeout_ms=5000
        )
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(KafkaConnectionError):
        asyncio.run(connect())
