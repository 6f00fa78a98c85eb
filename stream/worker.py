"""`valence worker`: load and warm the model, then join the consumer group and score.

The model is warmed up *before* the consumer joins its group, so a new worker never holds
partitions it cannot serve yet. /metrics, /health and /ready are served from process
start, on the event loop faust later runs on: while the model loads (in a thread) /health
answers and /ready says 503, so probes and alerts see a starting worker, not a dead one.
faust's Worker owns SIGTERM/SIGINT: it stops the app, which stops fetching, waits until
every taken event is published and acknowledged, commits, and exits. `stream.lifecycle`
bounds that stop and turns a fatal error into a stop with a non-zero exit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from mode.types.signals import BaseSignalT
from mode.utils.futures import maybe_cancel

from models.base import Scorer
from stream.app import ValenceApp, create_app
from stream.batching import batch_policy
from stream.config import Settings
from stream.consumer_metrics import REFRESH_INTERVAL_S, ConsumerMetrics
from stream.errors import ValenceError
from stream.factory import load_configured_scorer
from stream.http import HttpServer, build_http_app
from stream.lifecycle import EXIT_FAILURE
from stream.metrics import ValenceMetrics
from stream.pipeline import DEFAULT_MAX_REQUEST_BYTES, RecordLimits
from stream.topics import TopicMissing, check_connection, create_topics, read_message_limits

log = logging.getLogger(__name__)


def readiness(app: ValenceApp | None, metrics: ValenceMetrics) -> tuple[bool, dict[str, Any]]:
    """Ready = model warm, consumer joined its group, not rebalancing, not stopping; `app`
    is None until the model is loaded and the app built."""
    model_ready = metrics.model_ready._value.get() == 1
    if app is None:
        return False, {
            "model_ready": model_ready,
            "rebalancing": False,
            "stopping": False,
            "assigned_partitions": 0,
        }
    try:
        assigned = len(app.consumer.assignment())
    except Exception:  # consumer not started yet
        assigned = 0
    # faust's generation id is 0 until the first assignment (Kafka's start at 1).
    joined = app.consumer_generation_id > 0 and not app.rebalancing
    stopping = app.lifecycle.stopping
    return (
        model_ready and joined and not stopping,
        {
            "model_ready": model_ready,
            "rebalancing": app.rebalancing,
            "stopping": stopping,
            "assigned_partitions": assigned,
        },
    )


def liveness(app: ValenceApp, consumer: ConsumerMetrics) -> tuple[bool, dict[str, Any]]:
    """Failing once the worker failed, or when it has work and made no progress for
    `stall_timeout_s` (a stuck event, a hung model call, a delivery that never completes)."""
    pipeline = app.pipeline
    since_progress_s = time.monotonic() - pipeline.last_progress
    has_work = pipeline.in_flight > 0 or consumer.total_lag > 0
    stalled = has_work and since_progress_s > app.settings.stall_timeout_s
    failure = app.lifecycle.failure
    if failure is None and app._crashed.is_set():  # faust's own crash path (mode.Service)
        failure = f"faust app crashed: {app.crash_reason!r}"
    return (
        failure is None and not stalled,
        {
            "failure": failure,
            "stalled": stalled,
            "seconds_since_progress": round(since_progress_s, 1),
            "events_in_flight": pipeline.in_flight,
            "consumer_lag": consumer.total_lag,
        },
    )


@dataclass
class WorkerProbes:
    """/ready's and /health's answers from process start: `app` and `consumer` are set once
    the model is warm and the app built; until then the worker is alive and not ready."""

    metrics: ValenceMetrics
    app: ValenceApp | None = None
    consumer: ConsumerMetrics | None = None

    def ready(self) -> tuple[bool, dict[str, Any]]:
        return readiness(self.app, self.metrics)

    def live(self) -> tuple[bool, dict[str, Any]]:
        if self.app is None or self.consumer is None:
            return True, {"starting": True}
        return liveness(self.app, self.consumer)


class ValenceWorker(faust.Worker):
    """faust's Worker, with every stop bounded in time and a way to stop on failure."""

    def __init__(self, app: ValenceApp, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.lifecycle = app.lifecycle
        app.lifecycle.request_stop = self.stop_on_failure

    def _schedule_shutdown(self, signal: Any) -> None:
        self.lifecycle.begin_stop()  # SIGTERM/SIGINT: the deadline starts now
        super()._schedule_shutdown(signal)

    def stop_on_failure(self) -> None:
        if not self._signal_stop_time:  # not already stopping on a signal
            self._signal_stop_time = self.loop.time()
            self._signal_stop_future = asyncio.ensure_future(self._stop_after_failure())

    async def _stop_after_failure(self) -> None:
        await self.stop()
        maybe_cancel(self._starting_fut)


def prepare_model(settings: Settings, metrics: ValenceMetrics) -> tuple[Scorer, RecordLimits]:
    """Load and warm the model, create topics, read the record limits (blocking: runs in a
    thread at start, while the HTTP server already answers)."""
    started = time.monotonic()
    scorer = load_configured_scorer(settings)
    scorer.warmup()
    metrics.model_ready.set(1)
    metrics.batch_max_events.set(settings.batch_max_events)
    metrics.batch_max_tokens.set(batch_policy(settings, scorer.info.device).max_tokens)
    log.info(
        "model %s ready on %s in %.1fs",
        scorer.info.version,
        scorer.info.device,
        time.monotonic() - started,
    )
    if settings.create_topics:
        create_topics(
            settings,
            {
                settings.input_topic: settings.topic_partitions,
                settings.output_topic: settings.topic_partitions,
                settings.dead_letter_topic: 1,
            },
        )
    return scorer, record_limits(settings)


def build_worker_app(
    settings: Settings, metrics: ValenceMetrics, scorer: Scorer, limits: RecordLimits
) -> tuple[ValenceApp, ConsumerMetrics]:
    """The app (not started) around a loaded, warm `scorer`, and its consumer metrics."""
    app = create_app(settings, scorer, metrics, limits)
    consumer_metrics = ConsumerMetrics(metrics, device=scorer.info.device)
    app.sensors.add(consumer_metrics)

    @app.timer(REFRESH_INTERVAL_S)
    async def refresh_consumer_metrics() -> None:
        await consumer_metrics.refresh(app)

    return app, consumer_metrics


def record_limits(settings: Settings) -> RecordLimits:
    """The largest output and dead-letter records the broker takes (each topic's
    `max.message.bytes`); aiokafka's default where the broker would not say."""
    topics = [settings.output_topic, settings.dead_letter_topic]
    try:
        limits = read_message_limits(settings, topics)
    except TopicMissing as exc:
        raise TopicMissing(
            f"{exc}: create it, or let the worker create it (VALENCE_CREATE_TOPICS=true)"
        ) from None
    default = DEFAULT_MAX_REQUEST_BYTES
    result = RecordLimits(
        output_max_bytes=limits[settings.output_topic] or default,
        dead_letter_max_bytes=limits[settings.dead_letter_topic] or default,
    )
    log.info(
        "record limits: output %d bytes, dead letters %d bytes",
        result.output_max_bytes,
        result.dead_letter_max_bytes,
    )
    return result


def run_worker(settings: Settings) -> int:
    """Run until stopped; the exit status is 0 after a clean stop, non-zero after a failure."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("configuration: %s", settings.masked())
    metrics = ValenceMetrics.create()
    probes = WorkerProbes(metrics)
    server = HttpServer(
        build_http_app(metrics, probes.ready, probes.live), settings.http_host, settings.http_port
    )
    # faust runs on this loop later; serving from it now keeps /health a check that the
    # loop answers, from the first second on.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(server.start())
    log.info("serving /metrics /health /ready on %s:%d", settings.http_host, settings.http_port)
    try:
        # First, before the model loads: a wrong password or certificate fails in seconds.
        loop.run_until_complete(check_connection(settings))
        scorer, limits = loop.run_until_complete(
            asyncio.to_thread(prepare_model, settings, metrics)
        )
        app, consumer = build_worker_app(settings, metrics, scorer, limits)
    except ValenceError as exc:
        log.critical("valence worker cannot start: %s", exc)
        loop.run_until_complete(server.stop())
        loop.close()
        return EXIT_FAILURE
    except BaseException:
        loop.run_until_complete(server.stop())
        loop.close()
        raise
    probes.app, probes.consumer = app, consumer

    @app.on_before_shutdown.connect
    async def stop_http(_: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        await server.stop()

    worker = ValenceWorker(app, loop=loop, loglevel=settings.log_level.lower(), quiet=True)
    try:
        worker.execute_from_commandline()
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            return int(exit_.code) if isinstance(exit_.code, int) else EXIT_FAILURE
    app.lifecycle.finished = True
    return app.lifecycle.exit_code
