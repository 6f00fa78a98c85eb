"""The gateway's routes: events in over HTTP, scored events out over WebSocket or SSE.

Checks on `POST /v1/events`, in order: API key (401, 403 for a read-only key), rate limit
(429), body size (413), then each event with the worker's own `decode_event` (400 with the
dead-letter reason names), then produce with acks=all (202 only once acknowledged, 503 when
the broker did not acknowledge). Error bodies are `{"error": reason, "detail": text}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.events import DeadLetterReason, EditorEvent
from stream.codec import decode_event
from stream.config import Settings
from stream.errors import DecodeError
from stream.gateway.auth import Access, ApiKeys, RateLimiter
from stream.gateway.fanout import Fanout, ScoredSource, SlowClientError
from stream.gateway.openapi import render as render_openapi
from stream.gateway.producer import EventProducer
from stream.metrics import GatewayMetrics

log = logging.getLogger(__name__)

PAGE_DIR = Path(__file__).resolve().parent / "page"
SUBPROTOCOL = "valence.v1"
KEY_SUBPROTOCOL_PREFIX = "bearer."
SSE_KEEPALIVE_S = 15.0
SEND_TIMEOUT_S = 30.0
# The page loads nothing from elsewhere; this makes the browser hold it to that.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
STREAM_UPGRADED_AT = web.RequestKey("stream_upgraded_at", float)


@dataclass(frozen=True)
class Gateway:
    """Everything the handlers use, built once per process (no module-level state)."""

    settings: Settings
    keys: ApiKeys
    limiter: RateLimiter
    producer: EventProducer
    source: ScoredSource
    fanout: Fanout
    metrics: GatewayMetrics


GATEWAY = web.AppKey("gateway", Gateway)


def error(status: int, reason: str, detail: str, **extra: Any) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(extra.pop("retry_after") + 0.5)))
    return web.json_response(
        {"error": reason, "detail": detail, **extra}, status=status, headers=headers
    )


# --- authentication ---------------------------------------------------------------------


def presented_key(request: web.Request) -> str | None:
    """The API key from the Authorization header, the `bearer.<key>` WebSocket subprotocol,
    or the `api_key` query parameter (browsers cannot set headers on sockets)."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    for protocol in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        protocol = protocol.strip()
        if protocol.startswith(KEY_SUBPROTOCOL_PREFIX):
            return protocol[len(KEY_SUBPROTOCOL_PREFIX) :]
    return request.query.get("api_key")


def authorize(request: web.Request, need: Access) -> web.Response | None:
    """None when the request may go on, else the error response to send."""
    gateway = request.app[GATEWAY]
    key = presented_key(request)
    access = gateway.keys.access(key)
    if key is None or access is None:
        detail = "no API key given" if not key else "unknown API key"
        return error(401, "unauthorized", detail)
    if need is Access.WRITE and access is not Access.WRITE:
        return error(403, "forbidden", "this API key may read streams but not send events")
    wait_s = gateway.limiter.retry_after(key)
    if wait_s > 0:
        return error(
            429,
            "rate_limited",
            f"more than {gateway.settings.gateway_rate_per_s:g} requests/s for this key",
            retry_after=wait_s,
        )
    return None


# --- POST /v1/events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Item:
    index: int
    raw: bytes
    event: EditorEvent | None = None
    problem: DecodeError | None = None


def _items(body: bytes, settings: Settings) -> tuple[bool, list[_Item]]:
    """(whether the body was an array, its items decoded by the worker's contract)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None  # decode_event names the reason (not_utf8 or not_json)
    is_array = isinstance(parsed, list)
    raws = [orjson.dumps(item) for item in parsed] if is_array else [body]
    items = []
    for index, raw in enumerate(raws):
        try:
            event = decode_event(
                raw, max_bytes=settings.max_event_bytes, max_text_chars=settings.max_text_chars
            )
            items.append(_Item(index, raw, event=event))
        except DecodeError as exc:
            items.append(_Item(index, raw, problem=exc))
    return is_array, items


def _refusal(problem: DecodeError) -> dict[str, Any]:
    return {"error": problem.reason.value, "detail": problem.detail, "event_id": problem.event_id}


async def post_events(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    settings = gateway.settings
    refused = authorize(request, Access.WRITE)
    if refused is not None:
        return refused
    limit = settings.gateway_max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return error(413, "too_large", f"body of {request.content_length} bytes, limit {limit}")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return error(413, "too_large", f"body over the limit of {limit} bytes")
    is_array, items = _items(body, settings)
    if is_array and not items:
        return error(400, DeadLetterReason.INVALID_EVENT.value, "the array holds no events")
    if len(items) > settings.gateway_max_batch_events:
        return error(
            413,
            "too_large",
            f"{len(items)} events in one request, limit {settings.gateway_max_batch_events}",
        )
    for item in items:
        if item.problem is not None:
            gateway.metrics.events_rejected.labels(item.problem.reason.value).inc()
    valid = [item for item in items if item.event is not None]
    records = [(item.event.doc_id.encode(), item.raw) for item in valid if item.event]
    try:
        delivered = (
            await asyncio.wait_for(gateway.producer.send_all(records), SEND_TIMEOUT_S)
            if records
            else []
        )
    except Exception as exc:
        log.warning("broker did not acknowledge %d event(s): %r", len(valid), exc)
        return error(
            503, "broker_unavailable", f"not acknowledged by Kafka: {exc!r}", retry_after=1.0
        )
    gateway.metrics.events_accepted.inc(len(valid))
    accepted = {
        item.index: {
            "event_id": item.event.event_id,
            "partition": where.partition,
            "offset": where.offset,
        }
        for item, where in zip(valid, delivered, strict=True)
        if item.event
    }
    if not is_array:
        problem = items[0].problem
        if problem is not None:
            return web.json_response(_refusal(problem), status=400)
        return web.json_response({"accepted": list(accepted.values())}, status=202)
    if len(valid) == len(items):
        return web.json_response({"accepted": list(accepted.values())}, status=202)
    results = [
        {"index": item.index, "status": 202, **accepted[item.index]}
        if item.problem is None
        else {"index": item.index, "status": 400, **_refusal(item.problem)}
        for item in items
    ]
    return web.json_response(
        {"accepted": list(accepted.values()), "results": results}, status=207 if valid else 400
    )


# --- GET /v1/docs/{doc_id}/stream ---------------------------------------------------------


async def stream_doc(request: web.Request) -> web.StreamResponse:
    refused = authorize(request, Access.READ)
    if refused is not None:
        return refused
    doc_id = request.match_info["doc_id"]
    socket = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=30.0)
    if socket.can_prepare(request).ok:
        return await _websocket(request, socket, doc_id)
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _server_sent_events(request, doc_id)
    return error(
        400, "not_a_stream", "open this path as a WebSocket or with Accept: text/event-stream"
    )


async def _websocket(
    request: web.Request, socket: web.WebSocketResponse, doc_id: str
) -> web.WebSocketResponse:
    gateway = request.app[GATEWAY]
    open_sockets = gateway.metrics.open_sockets.labels("websocket")
    with gateway.fanout.subscribe(doc_id) as subscription:
        await socket.prepare(request)
        request[STREAM_UPGRADED_AT] = time.monotonic()
        open_sockets.inc()

        async def push() -> None:
            try:
                async for value in subscription:
                    await socket.send_str(value.decode("utf-8", "replace"))
            except SlowClientError as exc:  # counted by the fanout
                await socket.close(code=1013, message=str(exc)[:120].encode())

        pusher = asyncio.ensure_future(push())
        try:
            async for message in socket:  # the client sends nothing; this waits for close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pusher
            open_sockets.dec()
    return socket


async def _server_sent_events(request: web.Request, doc_id: str) -> web.StreamResponse:
    gateway = request.app[GATEWAY]
    open_sockets = gateway.metrics.open_sockets.labels("sse")
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    with gateway.fanout.subscribe(doc_id) as subscription:
        await response.prepare(request)
        request[STREAM_UPGRADED_AT] = time.monotonic()
        open_sockets.inc()
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    value = await subscription.next(SSE_KEEPALIVE_S)
                except SlowClientError as exc:
                    await response.write(f"event: error\ndata: {exc}\n\n".encode())
                    break
                # A comment line every so often: a write is how a gone client is noticed.
                chunk = b": keepalive\n\n" if value is None else b"data: " + value + b"\n\n"
                await response.write(chunk)
        except ConnectionResetError:  # the client went away
            pass
        finally:
            open_sockets.dec()
    return response


# --- the rest -----------------------------------------------------------------------------


async def page(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(PAGE_DIR / "index.html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.Response(text=render_openapi(), content_type="application/json")


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    gateway = request.app[GATEWAY]
    detail = {"producer": gateway.producer.ready(), "output_reader": gateway.source.ready()}
    ok = all(detail.values())
    return web.json_response(
        {"status": "ready" if ok else "not ready", **detail}, status=200 if ok else 503
    )


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[GATEWAY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


# --- middlewares --------------------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Requests by route template (fixed label values), method and status; latency."""
    gateway = request.app[GATEWAY]
    started = time.monotonic()
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        # A stream's latency is the time to its upgrade, not how long it stayed open.
        ended = request.get(STREAM_UPGRADED_AT, time.monotonic())
        gateway.metrics.requests.labels(name, request.method, str(status)).inc()
        gateway.metrics.request_duration.labels(name).observe(ended - started)


def cors(origins: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Cross-origin access for the configured origins (`*`: any); preflights answered here."""
    allowed = {origin.strip() for origin in origins.split(",") if origin.strip()}

    def allows(origin: str | None) -> bool:
        return origin is not None and ("*" in allowed or origin in allowed)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in (
            request.headers
        )
        if preflight:
            if not allows(origin):
                return error(403, "forbidden", f"origin {origin!r} is not allowed")
            response: web.StreamResponse = web.Response(status=204)
            response.headers.update(
                {
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Authorization, Content-Type",
                    "Access-Control-Max-Age": "600",
                }
            )
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = exc
            if isinstance(response, web.WebSocketResponse) or response.prepared:
                return response  # headers already sent (stream, socket)
        if allows(origin):
            assert origin is not None
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return middleware


def build_gateway_app(gateway: Gateway) -> web.Application:
    """The aiohttp application; starting it starts the producer and the output reader."""
    app = web.Application(
        middlewares=[count_requests, cors(gateway.settings.gateway_cors_origins)],
        # aiohttp refuses larger bodies itself; the handler turns that into a JSON 413.
        client_max_size=gateway.settings.gateway_max_body_bytes,
    )
    app[GATEWAY] = gateway
    app.router.add_get("/", page)
    app.router.add_static("/page/", PAGE_DIR, append_version=False)
    app.router.add_post("/v1/events", post_events)
    app.router.add_get("/v1/docs/{doc_id}/stream", stream_doc)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)

    async def start(_: web.Application) -> None:
        await gateway.producer.start()
        await gateway.source.start()

    async def stop(_: web.Application) -> None:
        await gateway.source.stop()
        await gateway.producer.stop()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app
