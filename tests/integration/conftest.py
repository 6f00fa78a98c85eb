"""Integration tests run against a real local Apache Kafka broker (deploy.kafka.launcher).

One broker per test session, on port 19092 (not 9092, where a developer's own broker may
run), with fresh data under pytest's tmp dir so topics and committed offsets never leak
from an earlier session. When another session on this machine already holds 19092, this
one runs its broker on a free port pair instead. Every test under tests/integration is
marked `integration`.
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from deploy.kafka import launcher
from stream.config import Settings

TEST_KAFKA_PORT = 19092
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees every collected item, so only mark the ones that live in this folder.
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


def _ports_free(port: int) -> bool:
    """The broker port and the controller port after it are both free on loopback."""
    for candidate in (port, port + 1):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", candidate)) == 0:
                return False
    return True


def _free_port_pair() -> int:
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port < 65535 and _ports_free(port):
            return port
    raise RuntimeError("no two consecutive free ports on 127.0.0.1")


@contextlib.contextmanager
def _claim_port() -> Iterator[int]:
    """19092 for the session holding its lock file, else a free port pair.

    The lock closes the race between sessions started together (a port check alone
    passes in both); it is released when the session ends or its process dies.
    """
    lock_path = Path(tempfile.gettempdir()) / f"valence-test-kafka-{TEST_KAFKA_PORT}.lock"
    with lock_path.open("a") as lock:
        if _try_lock(lock) and _ports_free(TEST_KAFKA_PORT):
            yield TEST_KAFKA_PORT
        else:
            yield _free_port_pair()


def _try_lock(lock: IO[str]) -> bool:
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a running local broker; it is stopped when the session ends."""
    with _claim_port() as port:
        settings = Settings(
            state_dir=tmp_path_factory.mktemp("valence-state"),
            kafka_port=port,
            bootstrap_servers=f"127.0.0.1:{port}",
            security_protocol="PLAINTEXT",  # the local broker only speaks PLAINTEXT
        )
        try:
            launcher.start(settings)
            failure = None
        except launcher.KafkaLauncherError as error:
            failure = str(error)
        if failure is not None:  # failed outside the except block: no chained traceback
            pytest.fail(f"local Kafka broker did not start: {failure}", pytrace=False)
        try:
            yield settings
        finally:
            launcher.stop(settings)
