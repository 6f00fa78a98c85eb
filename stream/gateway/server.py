"""Run the gateway: build its parts from the settings, serve until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from stream.config import Settings
from stream.gateway.app import Gateway, build_gateway_app
from stream.gateway.auth import ApiKeys, RateLimiter
from stream.gateway.fanout import Fanout, OutputTopicReader
from stream.gateway.producer import KafkaEventProducer
from stream.metrics import GatewayMetrics
from stream.topics import ensure_topics

log = logging.getLogger(__name__)


def build_gateway(settings: Settings, keys: ApiKeys) -> Gateway:
    metrics = GatewayMetrics.create()
    fanout = Fanout(metrics, settings.gateway_socket_queue)
    return Gateway(
        settings=settings,
        keys=keys,
        limiter=RateLimiter(settings.gateway_rate_per_s, settings.gateway_rate_burst),
        producer=KafkaEventProducer(settings),
        source=OutputTopicReader(settings, fanout, metrics),
        fanout=fanout,
        metrics=metrics,
    )


async def serve(settings: Settings) -> None:
    keys = ApiKeys.from_settings(settings)
    # The worker creates these too; whichever starts first, the topics exist.
    await ensure_topics(
        settings,
        {
            settings.input_topic: settings.topic_partitions,
            settings.output_topic: settings.topic_partitions,
        },
    )
    runner = web.AppRunner(build_gateway_app(build_gateway(settings, keys)), access_log=None)
    try:
        await runner.setup()  # starts the producer and the output-topic reader
        await web.TCPSite(runner, settings.gateway_host, settings.gateway_port).start()
        _announce(settings, keys)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        log.info("stopping the gateway")
    finally:
        await runner.cleanup()


def _announce(settings: Settings, keys: ApiKeys) -> None:
    url = f"http://{settings.gateway_host}:{settings.gateway_port}/"
    if keys.generated:
        # The key rides in the URL fragment, which browsers never send to the server.
        print(f"Valence gateway: open {url}#key={keys.generated}", flush=True)
        print("(no gateway keys configured: this random write key lasts until exit)", flush=True)
    else:
        print(f"Valence gateway: open {url} and enter an API key", flush=True)


def run_gateway(settings: Settings) -> int:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log.info("configuration: %s", settings.masked())
    asyncio.run(serve(settings))
    return 0
