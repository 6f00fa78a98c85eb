"""`valence demo`: the quickstart. Local Kafka, one worker, the sample events, results.

Runs the real thing end to end: starts (or reuses) the local broker, starts
`valence worker` as a child process, sends the sample editor events, prints each scored
event as it arrives, then stops the worker with SIGTERM (a graceful stop).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from stream.cli.client import read_topic, send_events
from stream.cli.output import summary_line
from stream.config import Settings
from stream.errors import ValenceError


def run_demo(settings: Settings, events_file: Path, timeout_s: float = 300.0) -> int:
    from deploy.kafka import launcher

    print(f"[demo] starting local Apache Kafka on {settings.bootstrap_servers} ...", flush=True)
    launcher.start(settings)
    from stream.topics import create_topics

    create_topics(
        settings,
        {
            settings.input_topic: settings.topic_partitions,
            settings.output_topic: settings.topic_partitions,
            settings.dead_letter_topic: 1,
        },
    )
    events = [orjson.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    wanted = {event["event_id"] for event in events}
    log_path = settings.state_dir / "worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"[demo] starting the worker (log: {log_path}) ...", flush=True)
    with open(log_path, "ab") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "stream.cli.main", "worker"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=_env(settings),
        )
    try:
        print(f"[demo] sending {len(events)} sample editor events ...", flush=True)
        asyncio.run(send_events(settings, events))
        seen = asyncio.run(_print_results(settings, wanted, timeout_s, worker))
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
    missing = wanted - seen
    if missing:
        raise ValenceError(f"{len(missing)} events were not scored; see {log_path}")
    print(
        f"[demo] all {len(wanted)} events scored; worker stopped cleanly "
        f"(exit {worker.returncode}). Broker left running: `valence kafka stop` stops it."
    )
    return 0


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude_none=True).items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"VALENCE_{name.upper()}"] = str(value)
    return env


async def _print_results(
    settings: Settings, wanted: set[str], timeout_s: float, worker: subprocess.Popen[bytes]
) -> set[str]:

    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    async for record in read_topic(settings, settings.output_topic, idle_timeout_s=timeout_s):
        value = record["value"]
        if value.get("event_id") in wanted and value["event_id"] not in seen:
            seen.add(value["event_id"])
            print(summary_line(value), flush=True)
        if seen >= wanted or time.monotonic() > deadline or worker.poll() is not None:
            break
    return seen
