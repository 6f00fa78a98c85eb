"""Latency of the worker's scheduling and CPU backend, old against new, back to back.

A focused comparison, much shorter than `valence bench`: the same realistic-mix events, at
the same offered rate, are sent to one worker per configuration, one configuration after
the other and then again in reverse order (A B C C B A), so slow drift in the machine's
load does not favour either end. Each phase records other processes' CPU before and during
it (`runner.watched`) and is repeated once when that changed.

Configurations (`--preset scheduling`, the default; `--preset token-cap` compares the CPU
token cap per model call, 2048 against 1024 and 512, with everything else at its default;
`--preset overdue-streak` compares how many calls in a row overdue events may take;
`--preset express` runs the express lane off and on;
`--preset default` runs the default worker twice, to see where its tail comes from):
- `fifo-torch-fp32`: arrival order, documents in one call, torch fp32 (the worker before
  issue 14);
- `shortest-torch-fp32`: shortest-first with per-document order and split documents,
  torch fp32 (the scheduling change alone);
- `shortest-default`: the same with the default CPU backend (the worker now).

Run: ``python -m stream.bench.scheduling [--preset P] --rate 6 --duration 40 [--output DIR]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from stream.bench import processes
from stream.bench.environment import MachineWatch, busy_processes, load_average
from stream.bench.load_phase import STAGES
from stream.bench.runner import isolated_settings, load_summary, watched_phase
from stream.bench.workload import as_events, sentence_pool, texts_for
from stream.config import Settings

log = logging.getLogger(__name__)

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "scheduling": {
        "fifo-torch-fp32": {
            "batch_order": "arrival",
            "batch_split_tokens": 0,
            "backend": "torch",
            "precision": "fp32",
        },
        "shortest-torch-fp32": {"backend": "torch", "precision": "fp32"},
        "shortest-default": {},
    },
    # How many model calls in a row overdue events may take (0: all of them, before issue
    # 14's second round), with everything else at its default.
    "overdue-streak": {
        "streak-0": {"batch_max_overdue_streak": 0},
        "streak-1": {"batch_max_overdue_streak": 1},
        "streak-2": {"batch_max_overdue_streak": 2},
    },
    # The default worker twice: where its tail latency comes from (see `stages_ms`).
    "default": {"default": {}},
    # The express lane (short events in a second model call beside the main one) off and
    # at its CPU default, everything else at its default.
    "express": {
        "express-off": {"batch_express_tokens": 0},
        "express-64": {"batch_express_tokens": 64},
        "express-160": {"batch_express_tokens": 160},
    },
    # The CPU token cap per model call, with the default scheduling and backend.
    "token-cap": {
        "cap-2048": {"batch_max_tokens": 2048},
        "cap-1024": {"batch_max_tokens": 1024},
        "cap-512": {"batch_max_tokens": 512},
    },
}


def _summary(phase: dict[str, Any]) -> dict[str, Any]:
    sizes = phase.get("end_to_end_by_size", {})
    latency = phase.get("latency_ms", {}).get("end_to_end", {})
    return {
        "scored": phase.get("scored"),
        "missing": phase.get("missing"),
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
        **{f"{size}_p99_ms": sizes.get(size, {}).get("p99") for size in ("sentence", "paragraph")},
        **{f"{size}_p50_ms": sizes.get(size, {}).get("p50") for size in ("sentence", "paragraph")},
        "slowest_1pct_stages_ms": phase.get("stages_ms", {}).get("slowest_1pct"),
        "others_cores_during": phase["machine"]["others_cores_during"],
        "under_load": phase["machine"]["under_load"],
    }


def compare(
    settings: Settings, rate: float, duration: float, preset: str = "scheduling", seed: int = 5
) -> dict[str, Any]:
    from deploy.kafka import launcher

    broker = launcher.start(settings)
    watch = MachineWatch([broker.pid] if broker.pid else [])
    tag = uuid.uuid4().hex[:8]
    logs = Path(settings.state_dir) / "bench" / f"scheduling-{tag}"
    pool = sentence_pool(seed=seed)
    texts = texts_for("mix", max(20, round(rate * duration)), pool, seed)
    configurations = PRESETS[preset]
    order = [*configurations, *reversed(configurations)]
    phases: list[dict[str, Any]] = []
    started_load = load_average()
    for turn, name in enumerate(order):
        group = isolated_settings(
            settings,
            f"valence-sched-{tag}-{turn}",
            **configurations[name],
        )
        worker = processes.worker(group, logs / f"{turn}-{name}.log")
        try:
            worker.start()
            worker.wait_until(processes.http_ready(int(worker.env["VALENCE_HTTP_PORT"])))
            log.info("%s: %d events at %.1f/s", name, len(texts), rate)
            events = as_events(texts, f"{name}-{turn}")
            phase = watched_phase(group, events, name, rate, duration * 4 + 120, watch)
            phase["memory_mb"] = worker.memory()
        finally:
            worker.stop()
        phases.append({"configuration": name, "turn": turn, **phase})
    summary = {
        name: [_summary(p) for p in phases if p["configuration"] == name] for name in configurations
    }
    return {
        "command": f"python -m stream.bench.scheduling --preset {preset} --rate {rate:g} "
        f"--duration {duration:g}",
        "rate": rate,
        "events_per_phase": len(texts),
        "order": order,
        "configurations": configurations,
        "summary": summary,
        "phases": phases,
        "machine_load": load_summary(
            [(f"{p['turn']} {p['configuration']}", p["machine"]) for p in phases]
        ),
        "load_average_at_start": started_load,
        "load_average_at_end": load_average(),
        "busy_processes_at_end": busy_processes(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _stages_cell(stages: dict[str, Any] | None) -> str:
    if not stages:
        return "-"
    return " / ".join(f"{stages[name]:,.0f}" for name in STAGES)


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Command: `{result['command']}`; {result['events_per_phase']} realistic-mix events "
        f"per phase at {result['rate']:g} events/s, order {' '.join(result['order'])}.",
        "",
        "| configuration | turn | p50 ms | p99 ms | sentence p50 / p99 ms | paragraph p50 / p99 ms "
        "| slowest 1%: intake / queued / inference / publish ms | others' cores during "
        "| missing |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in result["phases"]:
        s = _summary(phase)
        lines.append(
            f"| {phase['configuration']} | {phase['turn']} | {s['p50_ms']} | {s['p99_ms']} "
            f"| {s['sentence_p50_ms']} / {s['sentence_p99_ms']} "
            f"| {s['paragraph_p50_ms']} / {s['paragraph_p99_ms']} "
            f"| {_stages_cell(s['slowest_1pct_stages_ms'])} "
            f"| {s['others_cores_during']} | {s['missing']} |"
        )
    load = result["machine_load"]
    lines += [
        "",
        f"Load average at start {result['load_average_at_start']}, at end "
        f"{result['load_average_at_end']}. "
        + (
            f"**Taken under load**: other processes used up to {load['others_cores_max']} "
            "cores during the phases; compare configurations within this run only."
            if load["under_load"]
            else "Quiet machine."
        ),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stream.bench.scheduling")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="scheduling")
    parser.add_argument("--rate", type=float, default=6.0, help="Offered events/s.")
    parser.add_argument("--duration", type=float, default=40.0, help="Seconds per phase.")
    parser.add_argument("--output", type=Path, default=Path("bench-results/scheduling"))
    args = parser.parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s: %(message)s")
    result = compare(settings, args.rate, args.duration, args.preset)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "scheduling.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    (args.output / "scheduling.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
