"""`valence bench --gateway`: what a writer waits for on the page, and what the gateway adds.

In one run, on the local broker with a real `valence worker` and `valence gateway`:

1. **Typing**: the writing page in Debian's chromium (Playwright) types a paragraph
   sentence by sentence at `TYPING_DELAY_MS` per key, pausing after each sentence until its
   tint shows. Per revision the page records the send (the POST leaving, after the page's
   400 ms pause), the 202, and the tint on screen; reported as send -> tint and send -> 202.
2. **Produce**: events produced one at a time, in turns through the gateway (POST -> 202)
   and directly with aiokafka (acks=all, `send_and_wait`): the gateway's own overhead.
3. **Round trip**: event in -> its scored event out, one at a time, in turns through the
   gateway (POST, then the document's WebSocket) and directly (producer, then a reader of
   the output topic), after the worker caught up: what the gateway adds on the whole way.

Speeds are reported, never asserted. The machine's load average is recorded with them.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.bench import processes
from stream.bench.environment import load_average
from stream.cli.client import editor_event
from stream.config import Settings
from stream.topics import create_topics

log = logging.getLogger(__name__)

DEFAULT_OUTPUT = Path("bench-results") / "gateway"
TYPING_DELAY_MS = 40  # about 300 characters a minute: a fast typist
PARAGRAPH = (
    "I opened the letter this morning.",
    "It said the grant was approved, and I could not stop smiling.",
    "Then I read the second page.",
    "The budget was cut in half without a word of explanation.",
    "I am furious that nobody called us first.",
    "Still, the team took the news calmly.",
    "We met at noon to plan what we can still do.",
    "Honestly, I am a little scared of the deadline.",
    "But the first results already look wonderful.",
    "Tomorrow we start again.",
    "I am proud of how we handled it.",
    "What a strange, surprising week it has been.",
)


def _percentiles(values: list[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": at(0.95),
        "max_ms": round(ordered[-1], 1),
    }


def _isolated(settings: Settings) -> Settings:
    tag = uuid.uuid4().hex[:8]
    isolated = Settings(
        **{
            **settings.model_dump(exclude_none=True),
            "app_id": f"bench-gateway-{tag}",
            "input_topic": f"bench-gateway-{tag}.in",
            "output_topic": f"bench-gateway-{tag}.out",
            "dead_letter_topic": f"bench-gateway-{tag}.dlq",
            "http_port": processes.free_port(),
            "gateway_port": processes.free_port(),
            "gateway_write_keys": secrets.token_urlsafe(18),
            # One client posts as fast as it can here: measure the path, not the limiter.
            "gateway_rate_per_s": 1e6,
            "gateway_rate_burst": 1_000_000,
        }
    )
    partitions = isolated.topic_partitions
    create_topics(
        isolated,
        {isolated.input_topic: partitions, isolated.output_topic: partitions,
         isolated.dead_letter_topic: 1},
    )  # fmt: skip
    return isolated


def _key(settings: Settings) -> str:
    assert settings.gateway_write_keys is not None
    return settings.gateway_write_keys.get_secret_value().split(",")[0]


# --- 1. typing in the browser ----------------------------------------------------------------


def measure_typing(settings: Settings, screenshot: Path | None) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    url = f"http://127.0.0.1:{settings.gateway_port}/?doc=bench-{uuid.uuid4().hex[:6]}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(f"{url}#key={_key(settings)}")
            page.wait_for_function(
                "() => document.getElementById('status').textContent === 'live'", timeout=30_000
            )
            editor = page.locator("#editor")
            for index, sentence in enumerate(PARAGRAPH):
                editor.press_sequentially(("" if index == 0 else " ") + sentence,
                                          delay=TYPING_DELAY_MS)  # fmt: skip
                page.wait_for_function(
                    "n => window.valence.timings.some(t => t.revision === n)",
                    arg=index + 1,
                    timeout=120_000,
                )
            if screenshot is not None:
                page.screenshot(path=str(screenshot), full_page=True)
            timings: list[dict[str, Any]] = page.evaluate("window.valence.timings")
        finally:
            browser.close()
    return {
        "sentences": len(PARAGRAPH),
        "typing_delay_ms": TYPING_DELAY_MS,
        "pause_before_send_ms": 400,
        "send_to_tint": _percentiles([t["rendered_ms"] - t["sent_ms"] for t in timings]),
        "send_to_202": _percentiles([t["accepted_ms"] - t["sent_ms"] for t in timings]),
        "worker_inference": _percentiles([t["worker_inference_ms"] for t in timings]),
    }


# --- 2. and 3. gateway against a direct producer ---------------------------------------------


def _events(count: int, doc_id: str) -> list[dict[str, Any]]:
    return [
        editor_event(PARAGRAPH[i % len(PARAGRAPH)], doc_id=doc_id, revision=i + 1)
        for i in range(count)
    ]


class Paths:
    """Both ways in and out, opened once: the gateway (HTTP + WebSocket) and aiokafka
    directly (an acks=all producer, a group-less reader of the output topic)."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession, doc_id: str):
        self.settings = settings
        self.session = session
        self.doc_id = doc_id
        self.base = f"127.0.0.1:{settings.gateway_port}"
        self.headers = {"Authorization": f"Bearer {_key(settings)}"}
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.bootstrap_servers,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # as the gateway's producer
            **settings.kafka_client_options(),
        )
        self.reader = AIOKafkaConsumer(
            settings.output_topic,
            bootstrap_servers=settings.bootstrap_servers,
            group_id=None,
            auto_offset_reset="latest",
            fetch_max_wait_ms=50,  # as the gateway's reader
            **settings.kafka_client_options(),
        )
        self.socket: aiohttp.ClientWebSocketResponse | None = None
        self.scored: set[str] = set()  # event ids the direct reader has seen

    async def __aenter__(self) -> Paths:
        await self.producer.start()
        await self.reader.start()
        while not self.reader.assignment():
            await asyncio.sleep(0.05)
        for partition in self.reader.assignment():
            await self.reader.position(partition)
        self.socket = await self.session.ws_connect(
            f"ws://{self.base}/v1/docs/{self.doc_id}/stream",
            protocols=("valence.v1",),
            headers=self.headers,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.socket is not None:
            await self.socket.close()
        await self.producer.stop()
        await self.reader.stop()

    async def post(self, event: dict[str, Any]) -> float:
        """ms from sending the POST to its 202."""
        started = time.perf_counter()
        url = f"http://{self.base}/v1/events"
        async with self.session.post(url, data=orjson.dumps(event), headers=self.headers) as r:
            await r.read()
            if r.status != 202:
                raise RuntimeError(f"gateway answered {r.status}: {await r.text()}")
        return (time.perf_counter() - started) * 1000

    async def produce(self, event: dict[str, Any]) -> float:
        """ms from handing the event to aiokafka to the broker's acknowledgement."""
        started = time.perf_counter()
        await self.producer.send_and_wait(
            self.settings.input_topic, orjson.dumps(event), key=event["doc_id"].encode()
        )
        return (time.perf_counter() - started) * 1000

    async def read_until(self, event_ids: set[str], timeout_s: float = 600.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not event_ids <= self.scored:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(event_ids - self.scored)} events never scored")
            batches = await self.reader.getmany(timeout_ms=1000)
            for records in batches.values():
                self.scored.update(orjson.loads(r.value)["event_id"] for r in records)

    async def trip_via_gateway(self, event: dict[str, Any]) -> float:
        assert self.socket is not None
        started = time.perf_counter()
        await self.post(event)
        while (
            orjson.loads(await self.socket.receive_str(timeout=120))["event_id"]
            != (event["event_id"])
        ):
            pass
        return (time.perf_counter() - started) * 1000

    async def trip_direct(self, event: dict[str, Any]) -> float:
        started = time.perf_counter()
        await self.produce(event)
        await self.read_until({event["event_id"]})
        return (time.perf_counter() - started) * 1000


async def measure_overhead(settings: Settings, produce_count: int, trips: int) -> dict[str, Any]:
    """Both paths in turns, event by event, so both meet the same load (the worker scores
    what they send meanwhile)."""
    doc_id = f"bench-paths-{uuid.uuid4().hex[:6]}"
    events = _events(2 * produce_count + 2 * trips + 10, doc_id)
    warm, events = events[:10], events[10:]
    posted, produced = [], []
    async with aiohttp.ClientSession() as session, Paths(settings, session, doc_id) as paths:
        for i, event in enumerate(warm):
            await (paths.post(event) if i % 2 else paths.produce(event))
        for i in range(produce_count):
            via_gateway, direct = events[2 * i], events[2 * i + 1]
            if i % 2:
                posted.append(await paths.post(via_gateway))
                produced.append(await paths.produce(direct))
            else:
                produced.append(await paths.produce(direct))
                posted.append(await paths.post(via_gateway))
        # Let the worker finish that backlog, or the round trips would wait behind it.
        await paths.read_until({e["event_id"] for e in warm + events[: 2 * produce_count]})
        trip_events = events[2 * produce_count :]
        trip_gateway, trip_direct = [], []
        for i in range(trips):
            trip_gateway.append(await paths.trip_via_gateway(trip_events[2 * i]))
            trip_direct.append(await paths.trip_direct(trip_events[2 * i + 1]))
    produce = {
        "gateway_post_to_202": _percentiles(posted),
        "direct_acks_all": _percentiles(produced),
    }
    trip = {
        "gateway_post_to_socket": _percentiles(trip_gateway),
        "direct_produce_to_consume": _percentiles(trip_direct),
    }
    return {
        "produce": produce,
        "produce_overhead_p50_ms": round(
            produce["gateway_post_to_202"]["p50_ms"] - produce["direct_acks_all"]["p50_ms"], 1
        ),
        "round_trip": trip,
        "round_trip_overhead_p50_ms": round(
            trip["gateway_post_to_socket"]["p50_ms"] - trip["direct_produce_to_consume"]["p50_ms"],
            1,
        ),
    }


# --- the run ---------------------------------------------------------------------------------


def run(settings: Settings, output_dir: Path | None, command: str) -> dict[str, Any]:
    from deploy.kafka import launcher

    launcher.start(settings)
    isolated = _isolated(settings)
    output = output_dir or DEFAULT_OUTPUT
    output.mkdir(parents=True, exist_ok=True)
    logs = output / "logs"
    worker = processes.worker(isolated, logs / "worker.log").start()
    gateway = processes.gateway(isolated, logs / "gateway.log").start()
    try:
        worker.wait_until(processes.http_ready(isolated.http_port), timeout_s=300)
        gateway.wait_until(processes.http_ready(isolated.gateway_port), timeout_s=120)
        load_before = load_average()
        typing = measure_typing(isolated, output / "page.png")
        overhead = asyncio.run(measure_overhead(isolated, produce_count=200, trips=30))
        results = {
            "command": command,
            "attribution": isolated.attribution,
            "suggestions": isolated.suggestions,
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "typing": typing,
            **overhead,
        }
    finally:
        gateway.stop()
        worker.stop()
    (output / "gateway.json").write_text(
        orjson.dumps(results, option=orjson.OPT_INDENT_2).decode() + "\n"
    )
    return results


def main(settings: Settings, output_dir: Path | None, command: str) -> int:
    """Run, write gateway.json (and page.png), print the summary."""
    results = run(settings, output_dir, command)
    typing, produce, trip = results["typing"], results["produce"], results["round_trip"]
    print(
        f"page, send -> tint: p50 {typing['send_to_tint']['p50_ms']} ms, "
        f"p95 {typing['send_to_tint']['p95_ms']} ms over {typing['sentences']} revisions "
        f"(send -> 202: p50 {typing['send_to_202']['p50_ms']} ms)"
    )
    print(
        f"produce, one event: gateway POST -> 202 p50 {produce['gateway_post_to_202']['p50_ms']}"
        f" / p95 {produce['gateway_post_to_202']['p95_ms']} ms; direct aiokafka acks=all p50 "
        f"{produce['direct_acks_all']['p50_ms']} / p95 {produce['direct_acks_all']['p95_ms']} ms"
    )
    print(
        f"round trip: via gateway p50 {trip['gateway_post_to_socket']['p50_ms']} / p95 "
        f"{trip['gateway_post_to_socket']['p95_ms']} ms; direct p50 "
        f"{trip['direct_produce_to_consume']['p50_ms']} / p95 "
        f"{trip['direct_produce_to_consume']['p95_ms']} ms"
    )
    print(f"results in {output_dir or DEFAULT_OUTPUT}/gateway.json")
    return 0
