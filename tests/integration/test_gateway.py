"""The gateway end to end: a real broker, a real `valence worker` with the shipped model, two
`valence gateway` replicas, and the writing page in a real browser (Debian's chromium through
Playwright)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from playwright.sync_api import Page, expect, sync_playwright

from stream.bench import processes
from stream.cli.client import editor_event
from stream.config import Settings
from tests.integration.workers import free_port, isolated_settings

WRITE_KEY, READ_KEY = "it-write-key", "it-read-key"
JOYFUL = "I am so happy today, everything worked!"
# With the shipped model: anger, and after JOYFUL the text's suggestions toward joy replace
# "angry" ("happy", "joyful", ...; checked with `valence score` on the two sentences).
ANGRY = "I feel so angry."
MAX_TEXT_CHARS = 600
SCORE_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def settings(kafka: Settings) -> Settings:
    return isolated_settings(
        kafka,
        attribution=True,
        suggestions="requested",
        max_text_chars=MAX_TEXT_CHARS,
        gateway_write_keys=WRITE_KEY,
        gateway_read_keys=READ_KEY,
        gateway_port=free_port(),
    )


@pytest.fixture(scope="module")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    child = processes.worker(settings, tmp_path_factory.mktemp("worker") / "worker.log")
    child.start()
    try:
        child.wait_until(processes.http_ready(settings.http_port), timeout_s=300)
        yield
    finally:
        child.stop()


def _start_gateway(settings: Settings, log_dir: Path) -> processes.Child:
    child = processes.gateway(settings, log_dir / f"gateway-{settings.gateway_port}.log").start()
    try:
        child.wait_until(processes.http_ready(settings.gateway_port), timeout_s=120)
    except Exception:
        child.stop()
        raise
    return child


@pytest.fixture(scope="module")
def gateways(
    settings: Settings, worker: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Settings]]:
    """Two replicas side by side on the same topics."""
    log_dir = tmp_path_factory.mktemp("gateways")
    replica = settings.model_copy(update={"gateway_port": free_port()})
    children = [_start_gateway(settings, log_dir)]
    try:
        children.append(_start_gateway(replica, log_dir))
        yield [settings, replica]
    finally:
        for child in children:
            child.stop()


def _url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.gateway_port}"


async def _input_record(settings: Settings, partition: int, offset: int) -> dict:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        where = TopicPartition(settings.input_topic, partition)
        consumer.assign([where])
        consumer.seek(where, offset)
        record = await asyncio.wait_for(consumer.getone(), 30)
        return orjson.loads(record.value)
    finally:
        await consumer.stop()


def test_every_replica_streams_what_any_replica_accepted(
    settings: Settings, gateways: list[Settings]
) -> None:
    first, second = gateways
    event = editor_event(JOYFUL, doc_id="doc-replicas", event_id="replicas-1")

    async def scenario() -> tuple[dict, list[dict], dict]:
        async with aiohttp.ClientSession() as session:
            sockets = [
                await session.ws_connect(
                    f"{_url(gateway)}/v1/docs/doc-replicas/stream",
                    protocols=("valence.v1", f"bearer.{READ_KEY}"),
                )
                for gateway in (first, second)
            ]
            reply = await session.post(
                f"{_url(first)}/v1/events",
                json=event,
                headers={"Authorization": f"Bearer {WRITE_KEY}"},
            )
            assert reply.status == 202, await reply.text()
            accepted = (await reply.json())["accepted"][0]
            scored = [orjson.loads(await s.receive_str(timeout=120)) for s in sockets]
            refused = await session.post(
                f"{_url(second)}/v1/events",
                json=editor_event("x" * (MAX_TEXT_CHARS + 1)),
                headers={"Authorization": f"Bearer {WRITE_KEY}"},
            )
            assert refused.status == 400
            assert (await refused.json())["error"] == "text_too_long"
            for socket in sockets:
                await socket.close()
            return (
                accepted,
                scored,
                await _input_record(settings, accepted["partition"], accepted["offset"]),
            )

    accepted, scored, stored = asyncio.run(scenario())
    # The 202 names where the broker stored the event.
    assert accepted["event_id"] == "replicas-1" == stored["event_id"]
    for value in scored:
        assert value["event_id"] == "replicas-1"
        assert value["emotion"]["label"] == "joy"
        assert value["attributions"], "the worker runs with attribution on"


def _sentences(page: Page) -> list[str]:
    return page.locator("#scored-text .sentence").evaluate_all(
        "nodes => nodes.map(n => n.dataset.emotion)"
    )


def _wait_for_emotions(page: Page, emotions: list[str]) -> None:
    page.wait_for_function(
        "wanted => JSON.stringify([...document.querySelectorAll('#scored-text .sentence')]"
        ".map(n => n.dataset.emotion)) === JSON.stringify(wanted)",
        arg=emotions,
        timeout=SCORE_TIMEOUT_MS,
    )


def test_writing_page_in_a_real_browser(
    gateways: list[Settings], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = _url(gateways[0])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(f"{url}/?doc=doc-browser#key={WRITE_KEY}")
            expect(page.locator("#status")).to_have_text("live", timeout=30_000)
            editor = page.locator("#editor")

            # A joyful sentence is tinted joy.
            editor.press_sequentially(JOYFUL, delay=15)
            _wait_for_emotions(page, ["joy"])
            assert page.locator("#scored-text .sentence").first.inner_text().startswith(JOYFUL)

            # A second, angry sentence: both are shown, each with its own tint.
            editor.press_sequentially(" " + ANGRY, delay=15)
            _wait_for_emotions(page, ["joy", "anger"])
            angry = page.locator("#scored-text .sentence").nth(1)
            expect(angry.locator("u.attribution")).to_contain_text(["angry"])
            angry.hover()
            expect(page.locator("#tooltip")).to_be_visible()
            expect(page.locator("#tooltip")).to_contain_text("anger")
            expect(page.locator("#tooltip")).to_contain_text("%")
            expect(page.locator("#chart circle")).to_have_count(2)

            # A target emotion brings suggestions; applying one changes the text and its tint.
            page.select_option("#target", "joy")
            suggestion = page.locator("#suggestions button", has_text="angry")
            expect(suggestion.first).to_be_visible(timeout=SCORE_TIMEOUT_MS)
            angry.hover()
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            if request.config.getoption("--screenshot"):
                shutil.copyfile(shot, request.config.getoption("--screenshot"))
            replacement = suggestion.first.inner_text().split("\u2192")[1].split("(")[0].strip()
            suggestion.first.click()
            assert "angry" not in editor.input_value()
            assert replacement in editor.input_value()
            page.wait_for_function(
                "() => { const s = document.querySelectorAll('#scored-text .sentence');"
                " return s.length === 2 && s[1].dataset.emotion !== 'anger'"
                f" && s[1].textContent.includes({orjson.dumps(replacement).decode()}); }}",
                timeout=SCORE_TIMEOUT_MS,
            )

            # An over-long text is refused with a readable message.
            editor.fill("This is a sentence. " * (MAX_TEXT_CHARS // 20 + 5))
            expect(page.locator("#error")).to_contain_text("too long", timeout=30_000)
            expect(page.locator("#error")).to_contain_text(f"the limit is {MAX_TEXT_CHARS}")

            # A wrong API key is refused, and the page says so.
            wrong = browser.new_page()
            wrong.goto(f"{url}/?doc=doc-wrong-key#key=not-a-key")
            wrong.locator("#editor").press_sequentially(JOYFUL, delay=5)
            expect(wrong.locator("#error")).to_contain_text("refused the API key", timeout=30_000)
            expect(wrong.locator("#status")).not_to_have_text("live")
            assert _sentences(wrong) == []
        finally:
            browser.close()
