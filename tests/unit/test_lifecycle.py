"""How a worker stops: one report per failure, a stop request, and a deadline that exits."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from stream.app import ValenceApp, create_app
from stream.config import Settings
from stream.lifecycle import EXIT_FAILURE, Lifecycle
from stream.metrics import ValenceMetrics
from tests.unit.test_pipeline import FakeScorer


class Exits:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_failure_is_reported_once_and_requests_a_stop(caplog: pytest.LogCaptureFixture) -> None:
    exits = Exits()
    lifecycle = Lifecycle(shutdown_timeout_s=60, exit_process=exits)
    stops: list[int] = []
    lifecycle.request_stop = lambda: stops.append(1)
    lifecycle.fail(RuntimeError("dead-letter topic refused"))
    lifecycle.fail(RuntimeError("a consequence of the first"))
    lifecycle.cancel_watchdog()
    critical = [r.getMessage() for r in caplog.records if r.levelname == "CRITICAL"]
    assert critical == ["valence worker stopping (exit 1): RuntimeError: dead-letter topic refused"]
    assert stops == [1] and lifecycle.stopping
    assert lifecycle.exit_code == EXIT_FAILURE
    assert exits.codes == []


def test_a_stop_that_overruns_its_deadline_exits_non_zero() -> None:
    exits = Exits()
    lifecycle = Lifecycle(shutdown_timeout_s=0.2, exit_process=exits)
    started = time.monotonic()
    lifecycle.begin_stop()  # as on SIGTERM; nothing ever finishes the stop
    assert exits.called.wait(5)
    assert exits.codes == [EXIT_FAILURE]
    assert 0.2 <= time.monotonic() - started < 2


def test_a_clean_stop_exits_zero_and_the_watchdog_can_be_cancelled() -> None:
    exits = Exits()
    lifecycle = Lifecycle(shutdown_timeout_s=0.2, exit_process=exits)
    lifecycle.begin_stop()
    lifecycle.cancel_watchdog()
    time.sleep(0.4)
    assert exits.codes == [] and lifecycle.exit_code == 0


class NeverEmpty:
    """A consumer whose taken events are never all acknowledged."""

    def __init__(self) -> None:
        self.waits = 0

    async def wait_empty(self) -> None:
        self.waits += 1
        await asyncio.Event().wait()


def _app(tmp_path: Path, shutdown_timeout_s: float) -> ValenceApp:
    settings = Settings(
        state_dir=tmp_path, shutdown_timeout_s=shutdown_timeout_s, suggestions="off"
    )
    return create_app(settings, FakeScorer(), ValenceMetrics.create(CollectorRegistry()))


def test_a_rebalance_or_stop_waits_for_unacknowledged_events_only_so_long(
    tmp_path: Path,
) -> None:
    app = _app(tmp_path, shutdown_timeout_s=0.4)
    consumer = NeverEmpty()

    async def wait() -> float:
        started = time.monotonic()
        await app._consumer_wait_empty(consumer, logging.getLogger("test"))
        return time.monotonic() - started

    waited = asyncio.run(asyncio.wait_for(wait(), 5))
    assert consumer.waits == 1 and 0.2 <= waited < 1.0  # half of shutdown_timeout_s


def test_after_a_failure_nothing_waits_for_events_that_cannot_be_acknowledged(
    tmp_path: Path,
) -> None:
    app = _app(tmp_path, shutdown_timeout_s=60)
    app.lifecycle.fail("dead-letter topic refused")
    app.lifecycle.cancel_watchdog()
    consumer = NeverEmpty()
    asyncio.run(asyncio.wait_for(app._consumer_wait_empty(consumer, logging.getLogger("test")), 5))
    assert consumer.waits == 0


def test_a_finished_clean_stop_keeps_exit_zero_if_the_interpreter_is_slow_to_exit() -> None:
    exits = Exits()
    lifecycle = Lifecycle(shutdown_timeout_s=0.2, exit_process=exits)
    lifecycle.begin_stop()
    lifecycle.finished = True  # the worker's loop ended cleanly; library threads linger
    assert exits.called.wait(5)
    assert exits.codes == [0]
