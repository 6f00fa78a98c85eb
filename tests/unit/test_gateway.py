"""The gateway's HTTP/WebSocket behaviour with the Kafka side replaced by small fakes.

The producer fake records what would be produced (or fails like a broker that does not
acknowledge); scored events are handed to the real `Fanout` as the output-topic reader
would. The real broker is exercised in tests/integration/test_gateway.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from stream.cli.client import editor_event
from stream.config import Settings
from stream.errors import ConfigError
from stream.gateway.app import Gateway, build_gateway_app
from stream.gateway.auth import Access, ApiKeys, RateLimiter
from stream.gateway.fanout import Fanout, SlowClientError
from stream.gateway.openapi import COMMITTED
from stream.gateway.producer import Delivered
from stream.metrics import GatewayMetrics

WRITE, READ = "write-key-1", "read-key-1"
PAGE_DIR = Path(__file__).resolve().parents[2] / "stream" / "gateway" / "page"


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.fail: Exception | None = None

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ready(self) -> bool:
        return True

    async def send_all(self, records: Sequence[tuple[bytes, bytes]]) -> list[Delivered]:
        if self.fail is not None:
            raise self.fail
        start = len(self.sent)
        self.sent.extend(records)
        return [Delivered(partition=0, offset=start + i) for i in range(len(records))]


class FakeSource:
    def __init__(self) -> None:
        self.is_ready = True

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def ready(self) -> bool:
        return self.is_ready


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_gateway(**overrides: Any) -> Gateway:
    clock = overrides.pop("clock", Clock())
    settings = Settings(
        gateway_write_keys=SecretStr(WRITE),
        gateway_read_keys=SecretStr(READ),
        max_text_chars=200,
        **overrides,
    )
    metrics = GatewayMetrics.create(CollectorRegistry())
    return Gateway(
        settings=settings,
        keys=ApiKeys.from_settings(settings),
        limiter=RateLimiter(settings.gateway_rate_per_s, settings.gateway_rate_burst, clock),
        producer=FakeProducer(),
        source=FakeSource(),
        fanout=Fanout(metrics, settings.gateway_socket_queue),
        metrics=metrics,
    )


Scenario = Callable[[TestClient, Gateway], Awaitable[None]]


def run(scenario: Scenario, gateway: Gateway | None = None) -> Gateway:
    gateway = gateway or make_gateway()

    async def main() -> None:
        async with TestClient(TestServer(build_gateway_app(gateway))) as client:
            await scenario(client, gateway)

    asyncio.run(main())
    return gateway


def auth(key: str = WRITE) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def produced(gateway: Gateway) -> list[tuple[bytes, bytes]]:
    assert isinstance(gateway.producer, FakeProducer)
    return gateway.producer.sent


def sample(gateway: Gateway, name: str, labels: dict[str, str] | None = None) -> float | None:
    return gateway.metrics.registry.get_sample_value(name, labels or {})


# --- authentication and limits ------------------------------------------------------------


def test_post_without_a_key_is_401_and_produces_nothing() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        response = await client.post("/v1/events", json=editor_event("Hi there."))
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert (await response.json())["error"] == "unauthorized"
        unknown = await client.post(
            "/v1/events", json=editor_event("Hi there."), headers=auth("nope")
        )
        assert unknown.status == 401
        assert (await unknown.json())["detail"] == "unknown API key"

    assert produced(run(scenario)) == []


def test_read_only_key_writing_is_403() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        response = await client.post(
            "/v1/events", json=editor_event("Hi there."), headers=auth(READ)
        )
        assert response.status == 403
        assert (await response.json())["error"] == "forbidden"

    assert produced(run(scenario)) == []


def test_valid_event_is_202_with_its_id_after_the_produce() -> None:
    event = editor_event("What a lovely morning.", doc_id="doc-9", event_id="e-1")
    body = orjson.dumps(event)

    async def scenario(client: TestClient, gateway: Gateway) -> None:
        response = await client.post(
            "/v1/events", data=body, headers={**auth(), "Content-Type": "application/json"}
        )
        assert response.status == 202
        assert await response.json() == {
            "accepted": [{"event_id": "e-1", "partition": 0, "offset": 0}]
        }

    gateway = run(scenario)
    # The bytes the client sent go to the input topic unchanged, keyed by doc_id.
    assert produced(gateway) == [(b"doc-9", body)]
    assert sample(gateway, "valence_gateway_events_accepted_total") == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not_json"),
        (b"\xff\xfe", "not_utf8"),
        (b'"a string"', "not_an_object"),
        (orjson.dumps({**editor_event("Hi."), "revision": "3"}), "invalid_event"),
        (orjson.dumps({**editor_event("Hi."), "schema_version": 2}), "unknown_schema_version"),
        (orjson.dumps(editor_event("   ")), "empty_text"),
        (orjson.dumps(editor_event("x" * 201)), "text_too_long"),
    ],
)
def test_invalid_event_is_400_with_the_dead_letter_reason(body: bytes, reason: str) -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        response = await client.post("/v1/events", data=body, headers=auth())
        assert response.status == 400
        payload = await response.json()
        assert payload["error"] == reason
        assert payload["detail"]

    gateway = run(scenario)
    assert produced(gateway) == []
    assert sample(gateway, "valence_gateway_events_rejected_total", {"reason": reason}) == 1


def test_array_with_refused_items_is_207_per_item_and_produces_only_the_valid() -> None:
    good = [editor_event(f"Sentence {i}.", event_id=f"g-{i}") for i in range(2)]
    bad = {**editor_event("Hi.", event_id="b-1"), "revision": -1}

    async def scenario(client: TestClient, gateway: Gateway) -> None:
        response = await client.post("/v1/events", json=[good[0], bad, good[1]], headers=auth())
        assert response.status == 207
        payload = await response.json()
        assert [r["status"] for r in payload["results"]] == [202, 400, 202]
        assert payload["results"][1]["error"] == "invalid_event"
        assert payload["results"][1]["event_id"] == "b-1"
        assert [a["event_id"] for a in payload["accepted"]] == ["g-0", "g-1"]
        all_bad = await client.post("/v1/events", json=[bad, bad], headers=auth())
        assert all_bad.status == 400
        assert [r["status"] for r in (await all_bad.json())["results"]] == [400, 400]
        all_good = await client.post("/v1/events", json=good, headers=auth())
        assert all_good.status == 202
        empty = await client.post("/v1/events", json=[], headers=auth())
        assert empty.status == 400

    gateway = run(scenario)
    assert [orjson.loads(value)["event_id"] for _, value in produced(gateway)] == [
        "g-0",
        "g-1",
        "g-0",
        "g-1",
    ]


def test_body_over_the_limit_is_413() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        big = orjson.dumps(editor_event("word " * 400))
        assert len(big) > 1024
        response = await client.post("/v1/events", data=big, headers=auth())
        assert response.status == 413
        assert (await response.json())["error"] == "too_large"

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length to refuse early
            yield big[:600]
            yield big[600:]

        streamed = await client.post("/v1/events", data=chunked(), headers=auth())
        assert streamed.status == 413
        assert (await streamed.json())["error"] == "too_large"
        too_many = await client.post("/v1/events", json=[editor_event("Hi.")] * 3, headers=auth())
        assert too_many.status == 413

    gateway = run(scenario, make_gateway(gateway_max_body_bytes=1024, gateway_max_batch_events=2))
    assert produced(gateway) == []


def test_rate_limit_is_per_key_and_refills() -> None:
    clock = Clock()
    gateway = make_gateway(gateway_rate_per_s=2.0, gateway_rate_burst=3, clock=clock)

    async def scenario(client: TestClient, gateway: Gateway) -> None:
        statuses = []
        for _ in range(4):
            response = await client.post("/v1/events", json=editor_event("Hi."), headers=auth())
            statuses.append(response.status)
        assert statuses == [202, 202, 202, 429]
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["error"] == "rate_limited"
        # Another key has its own bucket.
        socket_open = await client.get("/v1/docs/d/stream", headers=auth(READ))
        assert socket_open.status == 400  # not a stream request, but past the limit
        clock.now += 0.5  # one token back at 2/s
        again = await client.post("/v1/events", json=editor_event("Hi."), headers=auth())
        assert again.status == 202

    run(scenario, gateway)
    assert len(produced(gateway)) == 4


def test_broker_not_acknowledging_is_503_never_202() -> None:
    gateway = make_gateway()
    assert isinstance(gateway.producer, FakeProducer)
    gateway.producer.fail = ConnectionError("broker down")

    async def scenario(client: TestClient, gateway: Gateway) -> None:
        response = await client.post("/v1/events", json=editor_event("Hi."), headers=auth())
        assert response.status == 503
        assert (await response.json())["error"] == "broker_unavailable"
        assert "Retry-After" in response.headers

    run(scenario, gateway)
    assert sample(gateway, "valence_gateway_events_accepted_total") == 0


def test_keys_in_both_lists_are_refused_and_none_configured_makes_one() -> None:
    with pytest.raises(ConfigError):
        ApiKeys.from_settings(
            Settings(gateway_write_keys=SecretStr("a,b"), gateway_read_keys=SecretStr("b"))
        )
    generated = ApiKeys.from_settings(Settings())
    assert generated.generated is not None and len(generated.generated) >= 20
    assert generated.access(generated.generated) is Access.WRITE
    assert ApiKeys.from_settings(Settings()).generated != generated.generated
    keys = ApiKeys.from_settings(Settings(gateway_write_keys=SecretStr(" a , b ")))
    assert (keys.access("a"), keys.access("b"), keys.access("c"), keys.access("")) == (
        Access.WRITE,
        Access.WRITE,
        None,
        None,
    )


# --- streams ------------------------------------------------------------------------------


def test_websocket_pushes_only_its_documents_scored_events() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        socket = await client.ws_connect(
            "/v1/docs/doc-a/stream", protocols=("valence.v1", f"bearer.{READ}")
        )
        assert socket.protocol == "valence.v1"
        assert sample(gateway, "valence_gateway_open_sockets", {"kind": "websocket"}) == 1
        gateway.fanout.publish("doc-b", b'{"doc_id": "doc-b"}')
        gateway.fanout.publish("doc-a", b'{"doc_id": "doc-a", "revision": 1}')
        message = await socket.receive_str(timeout=5)
        assert json.loads(message) == {"doc_id": "doc-a", "revision": 1}
        by_query = await client.ws_connect(f"/v1/docs/doc-a/stream?api_key={WRITE}")
        gateway.fanout.publish("doc-a", b'{"revision": 2}')
        assert json.loads(await by_query.receive_str(timeout=5)) == {"revision": 2}
        assert json.loads(await socket.receive_str(timeout=5)) == {"revision": 2}
        await socket.close()
        await by_query.close()
        for _ in range(50):
            if gateway.fanout.stream_count() == 0:
                break
            await asyncio.sleep(0.02)
        assert gateway.fanout.stream_count() == 0
        assert sample(gateway, "valence_gateway_open_sockets", {"kind": "websocket"}) == 0

    run(scenario)


def test_websocket_without_a_valid_key_is_refused_before_the_upgrade() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        for protocols in ((), ("valence.v1", "bearer.wrong")):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect("/v1/docs/doc-a/stream", protocols=protocols)
            assert refused.value.status == 401
        assert gateway.fanout.stream_count() == 0

    run(scenario)


def test_server_sent_events_fallback() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        response = await client.get(
            f"/v1/docs/doc-a/stream?api_key={READ}", headers={"Accept": "text/event-stream"}
        )
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert await response.content.readline() == b": connected\n"
        await response.content.readline()
        gateway.fanout.publish("doc-a", b'{"revision": 3}')
        assert await response.content.readline() == b'data: {"revision": 3}\n'
        response.close()

    run(scenario)


def test_slow_client_is_dropped_not_waited_for() -> None:
    metrics = GatewayMetrics.create(CollectorRegistry())
    fanout = Fanout(metrics, queue_size=2)

    async def scenario() -> None:
        with fanout.subscribe("d") as slow, fanout.subscribe("d") as fast:
            for i in range(3):
                fanout.publish("d", b"%d" % i)
                assert await fast.next(1) == b"%d" % i
            assert await slow.next(1) == b"0"
            assert await slow.next(1) == b"1"
            with pytest.raises(SlowClientError):
                await slow.next(1)

    asyncio.run(scenario())
    assert metrics.registry.get_sample_value("valence_gateway_slow_clients_dropped_total") == 1


# --- cross-origin, metrics, documents -------------------------------------------------------


def test_cors_only_for_configured_origins() -> None:
    gateway = make_gateway(gateway_cors_origins="https://editor.example")

    async def scenario(client: TestClient, gateway: Gateway) -> None:
        preflight = {"Access-Control-Request-Method": "POST"}
        ok = await client.options(
            "/v1/events", headers={**preflight, "Origin": "https://editor.example"}
        )
        assert ok.status == 204
        assert ok.headers["Access-Control-Allow-Origin"] == "https://editor.example"
        assert "Authorization" in ok.headers["Access-Control-Allow-Headers"]
        other = await client.options(
            "/v1/events", headers={**preflight, "Origin": "https://evil.example"}
        )
        assert other.status == 403
        assert "Access-Control-Allow-Origin" not in other.headers
        post = await client.post(
            "/v1/events",
            json=editor_event("Hi."),
            headers={**auth(), "Origin": "https://editor.example"},
        )
        assert post.status == 202
        assert post.headers["Access-Control-Allow-Origin"] == "https://editor.example"
        refused = await client.post(
            "/v1/events", json=editor_event("Hi."), headers={"Origin": "https://editor.example"}
        )
        assert refused.status == 401  # error answers carry CORS headers too, so pages can read them
        assert refused.headers["Access-Control-Allow-Origin"] == "https://editor.example"

    run(scenario, gateway)


def test_requests_are_counted_by_route_template_and_status() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        await client.post("/v1/events", json=editor_event("Hi."), headers=auth())
        await client.post("/v1/events", json=editor_event("Hi."))
        await client.get("/v1/docs/some-doc/stream", headers=auth())
        await client.get("/no-such-page")
        metrics = await client.get("/metrics")
        assert metrics.status == 200
        text = await metrics.text()
        assert 'valence_gateway_requests_total{method="POST",route="/v1/events",status="202"}' in (
            text
        )

    gateway = run(scenario)

    def requests(route: str, method: str, status: str) -> float | None:
        labels = {"route": route, "method": method, "status": status}
        return sample(gateway, "valence_gateway_requests_total", labels)

    assert requests("/v1/events", "POST", "202") == 1
    assert requests("/v1/events", "POST", "401") == 1
    assert requests("/v1/docs/{doc_id}/stream", "GET", "400") == 1  # template, not the doc id
    assert requests("unmatched", "GET", "404") == 1
    count = "valence_gateway_request_duration_seconds_count"
    assert sample(gateway, count, {"route": "/v1/events"}) == 2


def test_ready_follows_the_output_reader() -> None:
    gateway = make_gateway()

    async def scenario(client: TestClient, gateway: Gateway) -> None:
        assert (await client.get("/health")).status == 200
        assert (await client.get("/ready")).status == 200
        assert isinstance(gateway.source, FakeSource)
        gateway.source.is_ready = False
        not_ready = await client.get("/ready")
        assert not_ready.status == 503
        assert (await not_ready.json())["output_reader"] is False

    run(scenario, gateway)


def test_served_openapi_equals_the_committed_document() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        response = await client.get("/openapi.json")
        assert response.status == 200
        served = await response.text()
        assert served == COMMITTED.read_text(), (
            "schemas/v1/gateway.openapi.json drifted: run `python -m stream.gateway.openapi`"
        )
        document = json.loads(served)
        assert set(document["paths"]) >= {"/v1/events", "/v1/docs/{doc_id}/stream"}
        error = document["components"]["schemas"]["Error"]["properties"]["error"]
        assert "text_too_long" in error["description"]

    run(scenario)


def test_page_and_its_files_are_served_and_load_nothing_from_elsewhere() -> None:
    async def scenario(client: TestClient, gateway: Gateway) -> None:
        page = await client.get("/")
        assert page.status == 200
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        html = await page.text()
        for asset in ("/page/app.js", "/page/style.css"):
            assert asset in html
            assert (await client.get(asset)).status == 200
        assert (await client.get("/page/../app.py")).status in (403, 404)

    run(scenario)
    for path in PAGE_DIR.iterdir():
        text = path.read_text()
        # The SVG namespace is a name, not a download; nothing else may name another host.
        text = text.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path
