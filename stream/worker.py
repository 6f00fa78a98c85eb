"""`valence worker`: load and warm the model, then join the consumer group and score.

The model is warmed up *before* the consumer joins its group, so a new worker never holds
partitions it cannot serve yet. /metrics, /health and /ready are served from process
start, on the event loop faust later runs on: while the model loads (in a thread) /health
answers and /ready says 503, so probes and alerts see a starting worker, not a dead one.
faust's Worker owns SIGTERM/SIGINT: it stops the app, which stops fetching, waits until
every taken event is published and acknowledged, commits, and exits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import faust
from mode.types.signals import BaseSignalT

from models.base import Scorer
from stream.app import ValenceApp, create_app
from stream.batching import batch_policy
from stream.config import Settings
from stream.consumer_metrics import REFRESH_INTERVAL_S, ConsumerMetrics
from stream.factory import load_configured_scorer
from stream.http import HttpServer, build_http_app
from stream.metrics import ValenceMetrics
from stream.topics import create_topics

log = logging.getLogger(__name__)


def readiness(app: ValenceApp | None, metrics: ValenceMetrics) -> tuple[bool, dict[str, Any]]:
    """Ready = model warm, consumer joined its group and not rebalancing; `app` is None
    until the model is loaded and the app built."""
    model_ready = metrics.model_ready._value.get() == 1
    if app is None:
        return False, {"model_ready": model_ready, "rebalancing": False, "assigned_partitions": 0}
    try:
        assigned = len(app.consumer.assignment())
    except Exception:  # consumer not started yet
        assigned = 0
    # faust's generation id is 0 until the first assignment (Kafka's start at 1).
    joined = app.consumer_generation_id > 0 and not app.rebalancing
    return (
        model_ready and joined,
        {
            "model_ready": model_ready,
            "rebalancing": app.rebalancing,
            "assigned_partitions": assigned,
        },
    )


@dataclass
class WorkerReadiness:
    """/ready's answer from process start: the app is set once the model is warm."""

    metrics: ValenceMetrics
    app: ValenceApp | None = None

    def __call__(self) -> tuple[bool, dict[str, Any]]:
        return readiness(self.app, self.metrics)


def prepare_model(settings: Settings, metrics: ValenceMetrics) -> Scorer:
    """Load and warm the model, create topics (blocking: runs in a thread at start)."""
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
    create_topics(
        settings,
        {
            settings.input_topic: settings.topic_partitions,
            settings.output_topic: settings.topic_partitions,
            settings.dead_letter_topic: 1,
        },
    )
    return scorer


def build_worker_app(settings: Settings, metrics: ValenceMetrics, scorer: Scorer) -> ValenceApp:
    """The app (not started) around a loaded, warm `scorer`."""
    app = create_app(settings, scorer, metrics)
    consumer_metrics = ConsumerMetrics(metrics, device=scorer.info.device)
    app.sensors.add(consumer_metrics)

    @app.timer(REFRESH_INTERVAL_S)
    async def refresh_consumer_metrics() -> None:
        await consumer_metrics.refresh(app)

    return app


def run_worker(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("configuration: %s", settings.masked())
    metrics = ValenceMetrics.create()
    worker_readiness = WorkerReadiness(metrics)
    server = HttpServer(
        build_http_app(metrics, worker_readiness), settings.http_host, settings.http_port
    )
    # faust runs on this loop later; serving from it now keeps /health a check that the
    # loop answers, from the first second on.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(server.start())
    log.info("serving /metrics /health /ready on %s:%d", settings.http_host, settings.http_port)
    try:
        scorer = loop.run_until_complete(asyncio.to_thread(prepare_model, settings, metrics))
    except BaseException:
        loop.run_until_complete(server.stop())
        loop.close()
        raise
    app = build_worker_app(settings, metrics, scorer)
    worker_readiness.app = app

    @app.on_before_shutdown.connect
    async def stop_http(_: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        await server.stop()

    worker = faust.Worker(app, loop=loop, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
    return 0
