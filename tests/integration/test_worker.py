"""The worker end to end against the real broker: a child `valence worker` process, real
topics, the shipped model."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from stream.cli.client import editor_event, send_events
from stream.config import Settings
from tests.integration.workers import (
    WorkerProcess,
    collect,
    isolated_settings,
    read_to_end,
    wait_for_ids,
)


@pytest.fixture
def settings(kafka: Settings) -> Settings:
    # Below the broker's 1 MB message limit, so an oversized event can reach the worker.
    return isolated_settings(kafka, max_event_bytes=200_000)


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def _events(count: int, prefix: str) -> list[dict]:
    texts = [
        "I am so happy today, everything worked!",
        "This is terrible. I am furious about the delay.",
        "The meeting moved to 3 pm.",
        "I'm scared of what the results will show.",
    ]
    return [
        editor_event(
            texts[i % len(texts)], doc_id=f"doc-{i % 7}", revision=i, event_id=f"{prefix}-{i}"
        )
        for i in range(count)
    ]


def test_n_events_in_n_scored_events_out(settings: Settings, worker: WorkerProcess) -> None:
    events = _events(40, "n")
    long_text = " ".join(["The committee reviewed every proposal in detail."] * 80)
    events.append(editor_event(long_text, doc_id="doc-long", event_id="n-long"))
    asyncio.run(send_events(settings, events))
    records = collect(settings, settings.output_topic, until={e["event_id"] for e in events})
    by_id = {r["value"]["event_id"]: r for r in records}
    assert set(by_id) == {e["event_id"] for e in events}
    for sent in events:
        record = by_id[sent["event_id"]]
        out = record["value"]
        assert record["key"] == sent["doc_id"]
        assert (out["doc_id"], out["user_id"], out["revision"]) == (
            sent["doc_id"],
            sent["user_id"],
            sent["revision"],
        )
        assert math.isclose(sum(out["sentiment"]["probabilities"].values()), 1, abs_tol=1e-3)
        assert math.isclose(sum(out["emotion"]["probabilities"].values()), 1, abs_tol=1e-3)
        assert out["sentences"], "every text has at least one scored sentence"
    # Nothing of a long text is dropped: its sentences cover it to the end.
    long_out = by_id["n-long"]["value"]
    assert len(long_out["sentences"]) == 80
    assert long_out["sentences"][-1]["end"] == len(long_text)
    # Several events share a model call when they arrive together.
    assert max(r["value"]["timings"]["batch_events"] for r in records) > 1
    # Per document, revisions come out in the order they went in (one worker, no replay).
    for doc_id, revisions in _revisions_per_doc(read_to_end(settings, settings.output_topic)):
        assert revisions == sorted(revisions), f"{doc_id} out of order: {revisions}"
    status, body = worker.http("/metrics")
    assert status == 200
    assert "valence_end_to_end_latency_seconds_bucket" in body
    assert f'valence_events_out_total{{topic="{settings.output_topic}"}} 41.0' in body


# Writers' sentences with a target emotion, and a rewrite each that the method is known to
# find (grammatical by the parser, P(target) up): the worker must publish those suggestions.
TARGETED = [
    ("I'm so angry that the landlord kept our deposit.", "anger"),
    ("The meeting was moved to Thursday afternoon.", "surprise"),
    ("The package arrived two days late", "anger"),
]


def test_events_with_a_target_carry_grammatical_suggestions_equal_to_offline_scoring(
    settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    from models.recommend.grammar import Edit, Grammar, structure_kept
    from stream.cli.offline import score_lines

    events = [
        editor_event(text, doc_id=f"t-{i}", event_id=f"t-{i}", target_emotion=target)
        for i, (text, target) in enumerate(TARGETED)
    ]
    asyncio.run(send_events(settings, events))
    records = collect(settings, settings.output_topic, until={e["event_id"] for e in events})
    by_id = {r["value"]["event_id"]: r["value"] for r in records}
    offline = {
        r["event_id"]: r for r in score_lines(settings, [orjson.dumps(e).decode() for e in events])
    }
    grammar = Grammar.load()
    for event in events:
        out = by_id[event["event_id"]]
        suggestions = out["suggestions"]
        assert suggestions, f"no suggestion for {event['text']!r}"
        top = suggestions[0]
        text = event["text"]
        assert text[top["start"] : top["end"]] == top["original"]
        # Past saturation ("so angry" is P(anger) ~ 1) an intensification may not raise it.
        assert top["target"] == event["target_emotion"] and top["delta"] > -0.005
        edit = Edit(top["start"], top["end"], top["replacement"])
        before, after = grammar.parse([text, edit.apply(text)])
        assert structure_kept(before, after, edit), edit.apply(text)
        # Numbers and the like are never edited ("arrived aggressive days late").
        assert not any(t.like_num for t in before if top["start"] <= t.idx < top["end"])
        # `valence score --file` gives the same suggestions as the worker.
        assert top["replacement"] in {
            s["replacement"] for s in offline[event["event_id"]]["suggestions"]
        }


def test_malformed_events_are_dead_lettered_with_their_reason(
    settings: Settings, worker: WorkerProcess
) -> None:
    good = _events(5, "ok")
    base = editor_event("fine text", event_id="bad-x")
    bad: dict[str, bytes] = {
        "not_json": b"{this is not json",
        "not_utf8": b'{"text": "\xff\xfe"}',
        "not_an_object": b"[1, 2, 3]",
        "invalid_event": orjson.dumps({**base, "event_id": "bad-types", "revision": "seven"}),
        "empty_text": orjson.dumps({**base, "event_id": "bad-empty", "text": "   "}),
        "unknown_schema_version": orjson.dumps({**base, "event_id": "bad-v", "schema_version": 9}),
        "too_large": orjson.dumps({**base, "event_id": "bad-big", "text": "a" * 300_000}),
    }
    stream: list[dict | bytes] = [good[0], *bad.values(), *good[1:]]
    asyncio.run(send_events(settings, stream))
    letters = collect(settings, settings.dead_letter_topic, count=len(bad))
    assert Counter(r["value"]["reason"] for r in letters) == Counter(list(bad))
    originals = {r["value"]["reason"]: r["value"]["original_b64"] for r in letters}
    import base64

    assert base64.b64decode(originals["not_json"]) == bad["not_json"]
    assert all(r["value"]["source"]["topic"] == settings.input_topic for r in letters)
    scored = collect(settings, settings.output_topic, until={e["event_id"] for e in good})
    assert {r["value"]["event_id"] for r in scored} == {e["event_id"] for e in good}
    worker.assert_alive()
    assert worker.http("/health")[0] == 200
    _, metrics = worker.http("/metrics")
    assert 'valence_events_dead_lettered_total{reason="not_json"} 1.0' in metrics


def _revisions_per_doc(records: list[dict]) -> list[tuple[str, list[int]]]:
    """Each document's revisions in output order (records in partition offset order;
    a document's records share its partition)."""
    per_doc: dict[str, list[int]] = {}
    for record in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        per_doc.setdefault(record["value"]["doc_id"], []).append(record["value"]["revision"])
    return sorted(per_doc.items())


def _first_occurrences(revisions: list[int]) -> list[int]:
    first: list[int] = []
    for revision in revisions:
        if revision not in first:
            first.append(revision)
    return first


def _all_ids(settings: Settings, expected: set[str]) -> tuple[Counter, set[str], list[dict]]:
    """Once every expected id is out: the count of each id over the *whole* output topic
    (read to its end, so late duplicates count), the dead-lettered ids, and the records."""
    wait_for_ids(settings, expected, timeout_s=300)
    records = read_to_end(settings, settings.output_topic)
    counts = Counter(r["value"]["event_id"] for r in records)
    letters = read_to_end(settings, settings.dead_letter_topic)
    return counts, {r["value"]["event_id"] for r in letters}, records


def test_sigkill_mid_stream_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    events = _events(3000, "crash")
    expected = {e["event_id"] for e in events}
    first = WorkerProcess(settings, tmp_path / "first.log").start()
    try:
        first.wait_ready()
        asyncio.run(send_events(settings, events))
        # Kill it hard once it has published part of the stream, not all of it.
        partial = collect(settings, settings.output_topic, count=400, timeout_s=240)
        assert len(partial) >= 400, first.log_tail()
        first.signal(signal.SIGKILL)
        first.wait(30)
    finally:
        first.stop()
    published = {r["value"]["event_id"] for r in read_to_end(settings, settings.output_topic)}
    assert len(published) < len(expected), "the kill must land while work is unpublished"
    second = WorkerProcess(settings, tmp_path / "second.log").start()
    try:
        second.wait_ready()
        scored, dead, _ = _all_ids(settings, expected)
    finally:
        second.stop()
    missing = expected - set(scored) - dead
    assert not missing, f"{len(missing)} events lost, e.g. {sorted(missing)[:5]}"
    assert not dead, "no event of this stream is malformed"


def test_sigterm_finishes_in_flight_work_and_commits(settings: Settings, tmp_path: Path) -> None:
    events = _events(1500, "term")
    expected = {e["event_id"] for e in events}
    first = WorkerProcess(settings, tmp_path / "first.log").start()
    try:
        first.wait_ready()
        asyncio.run(send_events(settings, events))
        collect(settings, settings.output_topic, count=300, timeout_s=240)
        first.signal(signal.SIGTERM)
        started = time.monotonic()
        assert first.wait(90) == 0, first.log_tail()
        stop_s = time.monotonic() - started
    finally:
        first.stop()
    # The stop is bounded by the worker's own deadline, which the deploy files' grace
    # periods exceed (tests/unit/test_deploy_files.py).
    assert stop_s <= settings.shutdown_timeout_s, f"stop took {stop_s:.1f}s"
    before_restart = Counter(
        r["value"]["event_id"] for r in read_to_end(settings, settings.output_topic)
    )
    assert len(before_restart) < len(expected), "the signal must land while work is unpublished"
    second = WorkerProcess(settings, tmp_path / "second.log").start()
    try:
        second.wait_ready()
        scored, _, _ = _all_ids(settings, expected)
    finally:
        second.stop()
    assert expected <= set(scored), "a graceful stop must not lose events"
    # Everything published before the stop was committed: nothing is scored twice.
    duplicates = [event_id for event_id, n in scored.items() if n > 1]
    assert not duplicates, (
        f"{len(duplicates)} duplicates after a graceful stop "
        f"({len(before_restart)} published before it, stop took {stop_s:.1f}s)"
    )


def test_second_worker_joining_mid_stream_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    """Consumer-group scaling: a rebalance in the middle of a stream moves partitions
    between workers; every event still comes out (duplicates allowed). Events keep flowing
    before, during and after the second worker joins."""
    events = _events(6000, "scale")
    expected = {e["event_id"] for e in events}
    first = WorkerProcess(settings, tmp_path / "first.log").start()
    second = WorkerProcess(
        settings.model_copy(update={"http_port": settings.http_port + 1}), tmp_path / "second.log"
    )
    try:
        first.wait_ready()
        asyncio.run(send_events(settings, events[:1000]))
        second.start()
        sent = 1000
        while second.http_ready() is False and sent < 5000:
            asyncio.run(send_events(settings, events[sent : sent + 50]))
            sent += 50
            time.sleep(0.5)
        second.wait_ready()
        _, ready = second.http("/ready")
        asyncio.run(send_events(settings, events[sent:]))
        scored, dead, records = _all_ids(settings, expected)
    finally:
        first.stop()
        second.stop()
    assert orjson.loads(ready)["assigned_partitions"] >= 1, ready
    missing = expected - set(scored) - dead
    assert not missing, f"{len(missing)} events lost across the rebalance"
    # A partition that moved may replay revisions already published, but each document's
    # revisions first appear in the order they were written.
    for doc_id, revisions in _revisions_per_doc(records):
        first_seen = _first_occurrences(revisions)
        assert first_seen == sorted(first_seen), f"{doc_id} out of order across the rebalance"


def test_health_answers_from_start_and_ready_waits_for_the_warm_model_and_assignment(
    settings: Settings, tmp_path: Path
) -> None:
    """Probes and alerts see a starting worker as alive but not ready: /health answers while
    the model still loads, /ready (and valence_worker_ready) only once it scores."""
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    answers: list[tuple[int, int, dict]] = []  # (/health status, /ready status, /ready body)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            worker.assert_alive()
            try:
                health, _ = worker.http("/health")
                ready, body = worker.http("/ready")
                _, metrics = worker.http("/metrics")
            except OSError:  # the interpreter is still importing
                time.sleep(0.05)
                continue
            answers.append((health, ready, orjson.loads(body)))
            if ready == 200:
                assert "valence_worker_ready 1.0" in metrics
                break
            assert "valence_worker_ready 0.0" in metrics
            time.sleep(0.05)
    finally:
        worker.stop()
    first_health, first_ready, first_body = answers[0]
    assert (first_health, first_ready) == (200, 503)
    assert first_body == {
        "status": "not ready",
        "model_ready": False,
        "rebalancing": False,
        "stopping": False,
        "assigned_partitions": 0,
    }
    assert all(health == 200 for health, _, _ in answers), "alive the whole time"
    _, last_ready, last_body = answers[-1]
    assert last_ready == 200, worker.log_tail()
    assert last_body["model_ready"] is True and last_body["assigned_partitions"] >= 1
    # Every answer before the last was "not ready", with or without the model warm.
    assert {ready for _, ready, _ in answers[:-1]} == {503}
