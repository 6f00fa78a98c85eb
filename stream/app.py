"""The faust app: one object that owns the settings, metrics, model and pipeline.

No module-level state: `create_app` builds everything, and the worker, the tests and the
benchmark each build their own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import faust

from models.base import Scorer
from stream.config import Settings
from stream.factory import recommendation_step
from stream.lifecycle import Lifecycle
from stream.metrics import ValenceMetrics
from stream.pipeline import RecordLimits, ScoringPipeline, Source
from stream.publishing import FaustSink
from stream.scoring import BatchScorer

log = logging.getLogger(__name__)


class ValenceApp(faust.App):
    """A faust app carrying Valence's own parts."""

    settings: Settings
    metrics: ValenceMetrics
    pipeline: ScoringPipeline
    batch_scorer: BatchScorer
    lifecycle: Lifecycle

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        """faust waits here, on a stop and when partitions are revoked in a rebalance, until
        every taken event is acknowledged. Bounded: after a failure nothing more will be
        acknowledged, and a rebalance must not wait forever on one event either."""
        if self.lifecycle.failure is not None:
            logger.info("not waiting for in-flight events: the worker failed")
            return
        timeout_s = self.settings.shutdown_timeout_s / 2
        try:
            await asyncio.wait_for(super()._consumer_wait_empty(consumer, logger), timeout_s)
        except TimeoutError:
            log.warning(
                "in-flight events not acknowledged within %gs; going on without them "
                "(uncommitted, so they are read again)",
                timeout_s,
            )


def _credentials(settings: Settings) -> Any:
    options = settings.kafka_client_options()
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            ssl_context=options.get("ssl_context"),
            mechanism=settings.sasl_mechanism,
        )
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return None


def create_app(
    settings: Settings,
    scorer: Scorer,
    metrics: ValenceMetrics | None = None,
    limits: RecordLimits | None = None,
) -> ValenceApp:
    """The worker's app, with the scoring agent registered. `scorer` is loaded and warm;
    `limits` are the output and dead-letter topics' record limits (read from the broker)."""
    limits = limits or RecordLimits()
    # faust creates its data directory but not its parents.
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = ValenceApp(
        settings.app_id,
        broker=[f"kafka://{server.strip()}" for server in settings.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        value_serializer="raw",
        key_serializer="raw",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        broker_commit_interval=settings.commit_interval_s,
        broker_session_timeout=settings.session_timeout_s,
        broker_commit_every=10_000_000,  # commit on the interval only; acks decide what
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # The producer refuses records over this before sending: as large as the topics take.
        producer_max_request_size=max(limits.output_max_bytes, limits.dead_letter_max_bytes),
        processing_guarantee="at_least_once",
        stream_wait_empty=True,  # on stop: wait until every taken event is acknowledged
        web_enabled=False,  # Valence serves its own /metrics, /health, /ready
        table_cleanup_interval=3600,
        store="memory://",
        datadir=str(settings.state_dir / "faust" / "{conf.name}"),  # not the working dir
    )
    app.settings = settings
    app.lifecycle = Lifecycle(settings.shutdown_timeout_s)
    app.metrics = metrics or ValenceMetrics.create()
    app.batch_scorer = BatchScorer(
        scorer,
        step=recommendation_step(settings, scorer),
        step_duration=app.metrics.suggestion_duration,
    )
    info = scorer.info
    app.metrics.model_info.info(
        {
            "name": info.name,
            "version": info.version,
            "backbone": info.backbone,
            "device": info.device,
            "dtype": info.dtype,
            "backend": info.backend,
        }
    )

    async def on_fatal(exc: BaseException) -> None:
        app.lifecycle.fail(exc)

    app.pipeline = ScoringPipeline(
        settings, app.batch_scorer, FaustSink(app), app.metrics, on_fatal, limits
    )
    input_topic = app.topic(
        settings.input_topic,
        value_type=bytes,
        key_type=bytes,
        partitions=settings.topic_partitions,
    )

    @app.agent(input_topic, name="valence.score", concurrency=1)
    async def score(stream: faust.StreamT) -> None:
        # noack: faust must not acknowledge an event when the next one is taken (or in
        # take()'s `finally:`): the pipeline acknowledges it once its output is delivered.
        manual = cast(faust.Stream, stream).noack()  # the interface StreamT lacks noack()
        runner = asyncio.ensure_future(app.pipeline.run())
        runner.add_done_callback(lambda done: done.cancelled() or done.exception())  # reported
        # Every exception is caught here: faust's supervisor would restart the agent silently
        # and leave the failed event unacknowledged, blocking its partition for good.
        try:
            async for event in manual.events():
                message = event.message

                async def ack(event: faust.EventT = event) -> None:
                    await manual.ack(event)

                await app.pipeline.submit(
                    message.value,
                    Source(
                        topic=message.topic,
                        partition=message.partition,
                        offset=message.offset,
                        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
                        key=message.key,
                        ack=ack,
                    ),
                )
        except Exception as exc:
            app.lifecycle.fail(f"the scoring agent failed: {exc!r}")
        finally:
            await app.pipeline.close()
            if app.lifecycle.failure is None:
                # Finish what was taken: score, publish and acknowledge it before stopping.
                await asyncio.shield(runner)
            else:
                runner.cancel()

    return app
