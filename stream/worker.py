"""`valence worker`: load and warm the model, then join the consumer group and score.

The model is warmed up *before* the consumer joins its group, so a new worker never holds
partitions it cannot serve yet. faust's Worker owns SIGTERM/SIGINT: it stops the app,
which stops fetching, waits until every taken event is published and acknowledged,
commits, and exits.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from mode.types.signals import BaseSignalT

from stream.app import ValenceApp, create_app
from stream.batching import batch_policy
from stream.config import Settings
from stream.consumer_metrics import REFRESH_INTERVAL_S, ConsumerMetrics
from stream.factory import load_configured_scorer
from stream.http import HttpServer, build_http_app
from stream.metrics import ValenceMetrics
from stream.topics import create_topics

log = logging.getLogger(__name__)


def readiness(app: ValenceApp) -> tuple[bool, dict[str, Any]]:
    try:
        assigned = len(app.consumer.assignment())
    except Exception:  # consumer not started yet
        assigned = 0
    model_ready = app.metrics.model_ready._value.get() == 1
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


def build_worker_app(settings: Settings) -> ValenceApp:
    """Load and warm the model, create topics, build the app (not started)."""
    metrics = ValenceMetrics.create()
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
    app = create_app(settings, scorer, metrics)
    server = HttpServer(
        build_http_app(metrics, lambda: readiness(app)), settings.http_host, settings.http_port
    )

    consumer_metrics = ConsumerMetrics(metrics, device=scorer.info.device)
    app.sensors.add(consumer_metrics)

    @app.timer(REFRESH_INTERVAL_S)
    async def refresh_consumer_metrics() -> None:
        await consumer_metrics.refresh(app)

    @app.task
    async def serve_http() -> None:
        await server.start()
        log.info("serving /metrics /health /ready on %s:%d", settings.http_host, settings.http_port)

    @app.on_before_shutdown.connect
    async def stop_http(_: Any, /, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
        await server.stop()

    return app


def run_worker(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("configuration: %s", settings.masked())
    app = build_worker_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
    return 0
