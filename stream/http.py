"""/metrics, /health and /ready, served from the worker's event loop with aiohttp.

/health answers 200 while the process and its event loop are alive, from process start
(while the model still loads). /ready answers 200 once the model is loaded and warmed up
and the consumer has joined its group (so a load balancer or Kubernetes only counts
workers that really score), 503 otherwise. Each scrape of /metrics also records that
answer as `valence_worker_ready`, so alerts can wait for readiness, not for a scrape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.metrics import ValenceMetrics

ReadinessProbe = Callable[[], tuple[bool, dict[str, Any]]]


def build_http_app(metrics: ValenceMetrics, readiness: ReadinessProbe) -> web.Application:
    async def metrics_handler(_: web.Request) -> web.Response:
        metrics.worker_ready.set(1 if readiness()[0] else 0)
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health_handler(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready_handler(_: web.Request) -> web.Response:
        ready, detail = readiness()
        return web.json_response(
            {"status": "ready" if ready else "not ready", **detail}, status=200 if ready else 503
        )

    http = web.Application()
    http.router.add_get("/metrics", metrics_handler)
    http.router.add_get("/health", health_handler)
    http.router.add_get("/ready", ready_handler)
    return http


class HttpServer:
    def __init__(self, app: web.Application, host: str, port: int):
        self._runner = web.AppRunner(app, access_log=None)
        self._host, self._port = host, port

    async def start(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    async def stop(self) -> None:
        await self._runner.cleanup()
