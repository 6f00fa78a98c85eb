"""`valence bench --soak MINUTES`: the worker at half its saturated throughput for a long
time, on the realistic mix, watching what only time shows.

Order: start (or reuse) the local broker; start `valence worker` on isolated topics; send a
backlog to measure its saturated throughput; then send Poisson arrivals at
`SOAK_FRACTION` of it for MINUTES while sampling the worker's RSS and consumer lag every
`SAMPLE_S`; then wait for the last outputs. Passes when RSS after warm-up (the first
`WARMUP_SHARE` of the run) grew by at most `MAX_RSS_GROWTH`, the lag stayed bounded (never
above `MAX_LAG_SECONDS` of arrivals), and no event was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from stream.bench import processes
from stream.bench.environment import describe
from stream.bench.load_phase import Collector, run_phase, send_events_paced
from stream.bench.options import DEFAULT_OUTPUT
from stream.bench.runner import _load, isolated_settings
from stream.bench.workload import as_events, sentence_pool, texts_for
from stream.config import Settings

log = logging.getLogger(__name__)

SOAK_FRACTION = 0.5
SAMPLE_S = 10.0
WARMUP_SHARE = 0.2
MAX_RSS_GROWTH = 0.05
MAX_LAG_SECONDS = 30.0
SATURATION_EVENTS = 400


def _lag(port: int) -> float | None:
    """The worker's own consumer lag (sum over its partitions), from its /metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "valence_consumer_lag_messages"
        for sample in family.samples
    )


async def _sample(
    worker: processes.Child, port: int, samples: list[dict[str, float]], stop: asyncio.Event
) -> None:
    started = time.monotonic()
    while not stop.is_set():
        worker.check_alive()
        rss = worker.memory().get("rss_mb")
        lag = await asyncio.to_thread(_lag, port)
        elapsed = round(time.monotonic() - started, 1)
        samples.append({"t_s": elapsed, "rss_mb": rss or 0.0, "lag": -1.0 if lag is None else lag})
        with contextlib.suppress(TimeoutError):  # the next sample, or the end
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


async def _soak_phase(
    group: Settings, worker: processes.Child, events: list[dict[str, Any]], rate: float
) -> dict[str, Any]:
    collector = Collector(group, group.output_topic)
    samples: list[dict[str, float]] = []
    stop = asyncio.Event()
    await collector.start()
    try:
        wanted = {str(event["event_id"]) for event in events}
        sending_s = len(events) / rate
        collecting = asyncio.ensure_future(collector.collect(wanted, sending_s + 300))
        sampling = asyncio.ensure_future(_sample(worker, group.http_port, samples, stop))
        sent_s = await send_events_paced(group, group.input_topic, events, rate)
        observed = await collecting
        stop.set()
        await sampling
    finally:
        await collector.stop()
    return {
        "sent": len(events),
        "scored": len(observed),
        "missing": len(events) - len(observed),
        "duplicates": collector.duplicates,
        "send_seconds": round(sent_s, 1),
        "samples": samples,
    }


def verdict(result: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    """RSS growth after warm-up, lag bound, losses: the soak's pass criteria."""
    samples = [s for s in result["samples"] if s["t_s"] <= seconds]
    warm = [s for s in samples if s["t_s"] >= WARMUP_SHARE * seconds]
    baseline = warm[0]["rss_mb"] if warm else None
    final = warm[-1]["rss_mb"] if warm else None
    growth = (final - baseline) / baseline if baseline and final else None
    lags = [s["lag"] for s in samples if s["lag"] >= 0]
    lag_bound = rate * MAX_LAG_SECONDS
    return {
        "rss_after_warmup_mb": baseline,
        "rss_at_end_mb": final,
        "rss_growth": None if growth is None else round(growth, 4),
        "rss_growth_ok": growth is not None and growth <= MAX_RSS_GROWTH,
        "lag_max": max(lags) if lags else None,
        "lag_bound": round(lag_bound, 1),
        "lag_ok": bool(lags) and max(lags) <= lag_bound,
        "lost_ok": result["missing"] == 0,
    }


def run_soak(settings: Settings, minutes: float, seed: int = 1) -> dict[str, Any]:
    from deploy.kafka import launcher

    launcher.start(settings)
    tag = uuid.uuid4().hex[:8]
    logs = Path(settings.state_dir) / "bench" / f"soak-{tag}"
    scorer = _load(settings)  # only to describe the environment as the worker sees it
    environment = describe(settings, scorer)
    del scorer
    pool = sentence_pool(seed=seed)
    group = isolated_settings(settings, f"valence-soak-{tag}")
    worker = processes.worker(group, logs / "worker.log").start()
    try:
        worker.wait_until(processes.http_ready(group.http_port))
        backlog = as_events(texts_for("mix", SATURATION_EVENTS, pool, seed), "saturation")
        saturation = asyncio.run(
            run_phase(
                group, group.input_topic, group.output_topic, backlog, "saturation", None, 600
            )
        ).summary()
        rate = SOAK_FRACTION * float(saturation["throughput"])
        seconds = minutes * 60
        count = max(20, round(rate * seconds))
        log.info("soak: %.1f events/s (%.0f%% of %.1f) for %g min", rate,
                 SOAK_FRACTION * 100, saturation["throughput"], minutes)  # fmt: skip
        events = as_events(texts_for("mix", count, pool, seed + 7), "soak")
        result = asyncio.run(_soak_phase(group, worker, events, rate))
    finally:
        exit_code = worker.stop()
    checks = verdict(result, rate, seconds)
    report = {
        "command": f"valence bench --soak {minutes:g}",
        "environment": environment,
        "minutes": minutes,
        "saturated_events_per_s": saturation["throughput"],
        "rate_events_per_s": round(rate, 2),
        **{k: v for k, v in result.items() if k != "samples"},
        **checks,
        "passed": checks["rss_growth_ok"] and checks["lag_ok"] and checks["lost_ok"],
        "worker_exit_code": exit_code,
        "samples": result["samples"],
    }
    output = DEFAULT_OUTPUT / environment["device_kind"] / "soak"
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    report["output_dir"] = str(output)
    return report


def soak_command(settings: Settings, minutes: float) -> int:
    report = run_soak(settings, minutes)
    print(
        f"soak {minutes:g} min at {report['rate_events_per_s']} events/s: sent {report['sent']}, "
        f"missing {report['missing']}, RSS {report['rss_after_warmup_mb']} -> "
        f"{report['rss_at_end_mb']} MiB ({report['rss_growth']}), lag max {report['lag_max']} "
        f"(bound {report['lag_bound']}): {'passed' if report['passed'] else 'FAILED'}"
    )
    print(f"results in {report['output_dir']}")
    return 0 if report["passed"] else 1
