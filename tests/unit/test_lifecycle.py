"""How a worker stops: one report per failure, a stop request, and a deadline that exits."""

from __future__ import annotations

import threading
import time

import pytest

from stream.lifecycle import EXIT_FAILURE, Lifecycle


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
