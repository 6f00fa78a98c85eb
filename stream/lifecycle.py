"""How a worker stops: on a signal, or on a failure it cannot handle, and always in time.

Error policy of the whole worker: an exception that belongs to one event dead-letters that
event (`stream.pipeline`); any other exception -- in the agent, the model, a delivery, or
dead-lettering itself -- is fatal. `Lifecycle.fail` then logs one line saying why, skips
waiting for events that will never be acknowledged, and stops the worker, which exits with
`EXIT_FAILURE`. Nothing past the failed event is committed (faust commits only the offsets
below the first unacknowledged one), so an orchestrator's restart picks up from there.

Whatever state the agent is in, a stop ends the process within `shutdown_timeout_s`: a
watchdog thread, started with the stop, exits the process when the deadline passes (a thread,
so a blocked event loop cannot hold it up).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILURE = 1


class Lifecycle:
    """One worker's stop state. `request_stop` is set by the worker that runs the app."""

    def __init__(self, shutdown_timeout_s: float, exit_process: Callable[[int], None] = os._exit):
        self.shutdown_timeout_s = shutdown_timeout_s
        self.failure: str | None = None
        self.stopping = False
        self.finished = False  # the worker's loop ended: only interpreter exit is left
        self.request_stop: Callable[[], None] | None = None
        self._exit_process = exit_process
        self._watchdog: threading.Timer | None = None
        self._lock = threading.Lock()

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.failure is None else EXIT_FAILURE

    def fail(self, error: BaseException | str) -> None:
        """Stop the worker because of `error`; only the first failure is reported."""
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        with self._lock:
            first = self.failure is None
            if first:
                self.failure = reason
        if not first:
            log.debug("further failure while stopping: %s", reason)
            return
        log.critical("valence worker stopping (exit %d): %s", EXIT_FAILURE, reason)
        self.begin_stop()
        if self.request_stop is not None:
            self.request_stop()

    def begin_stop(self) -> None:
        """The worker is stopping (signal or failure): start the deadline watchdog once."""
        with self._lock:
            self.stopping = True
            if self._watchdog is not None:
                return
            self._watchdog = threading.Timer(self.shutdown_timeout_s, self._deadline_passed)
            self._watchdog.daemon = True
            self._watchdog.name = "valence-stop-watchdog"
            self._watchdog.start()

    def _deadline_passed(self) -> None:
        # A stop that overran may have left events unacknowledged, unless only the
        # interpreter's own exit (joining library threads) was left.
        code = self.exit_code if self.finished else EXIT_FAILURE
        log.critical(
            "valence worker did not stop within shutdown_timeout_s=%gs (%s); exiting with %d",
            self.shutdown_timeout_s,
            self.failure or "stop requested",
            code,
        )
        logging.shutdown()
        self._exit_process(code)

    def cancel_watchdog(self) -> None:
        """The process is about to exit by itself (tests)."""
        with self._lock:
            if self._watchdog is not None:
                self._watchdog.cancel()
