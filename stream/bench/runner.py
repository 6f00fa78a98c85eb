"""One benchmark run: model-only ceiling, the worker, the naive floor, in the same run.

Order: start (or reuse) the local broker; create isolated topics; load the model here for
the model-only measurements; start `valence worker` and the naive consumer as child
processes and wait until both have joined their groups; then time the model alone on a
backlog of the realistic mix, and per round send the same backlog to the worker, then to the
naive consumer, then time the model alone again. Offered loads (fractions of the worker's
saturated throughput) follow, then the worker's memory is read, the children stopped, and
the model-level studies run.

The worker runs with the segment cache off for these phases: the mix draws its sentences
from a finite pool and every round resends the same backlog, so cache hits there would be
artefacts. The cache is measured on the editing-session replay, where repeats are real.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models.base import Scorer
from stream.batching import BatchPolicy, batch_policy, estimate_tokens
from stream.bench import backends, processes, profile, studies
from stream.bench.environment import (
    BUSY_CORES,
    LOAD_CHANGE_CORES,
    MachineWatch,
    describe,
    load_average,
)
from stream.bench.load_phase import run_phase
from stream.bench.model_only import cache_replay, measure
from stream.bench.naive import READY
from stream.bench.options import DEFAULT_OUTPUT, BenchOptions
from stream.bench.report import write_report
from stream.bench.targets import evaluate_targets
from stream.bench.workload import (
    as_events,
    editing_sessions,
    sentence_pool,
    texts_for,
)
from stream.config import Settings
from stream.factory import load_configured_scorer
from stream.topics import create_topics

log = logging.getLogger(__name__)

# The batcher's token count: the same function the worker's pipeline uses.
count_tokens = estimate_tokens


def isolated_settings(settings: Settings, name: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        **settings.model_dump(exclude_none=True),
        "app_id": name,
        "input_topic": f"{name}.in",
        "output_topic": f"{name}.out",
        "dead_letter_topic": f"{name}.dlq",
        "http_port": processes.free_port(),
        "segment_cache_size": 0,  # see the module docstring
        **overrides,
    }
    isolated = Settings(**values)
    create_topics(
        isolated,
        {
            isolated.input_topic: isolated.topic_partitions,
            isolated.output_topic: isolated.topic_partitions,
            isolated.dead_letter_topic: 1,
        },
    )
    return isolated


def _load(settings: Settings) -> Scorer:
    scorer = load_configured_scorer(settings)  # exactly as the worker loads it
    scorer.warmup()
    return scorer


QUIET_WINDOW_S = 2.0  # others' CPU is sampled this long before each phase


def watched(watch: MachineWatch, name: str, run: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """`run(attempt)` with the machine watched: other processes' CPU in the quiet window
    before it and during it, and the load average around it. When others' CPU changed by
    more than LOAD_CHANGE_CORES, the phase is run once more and the second figures kept."""
    attempts: list[dict[str, Any]] = []
    result: dict[str, Any] = {}
    for attempt in range(2):
        machine: dict[str, Any] = {"load_average_before": load_average()}
        machine["others_cores_before"] = watch.quiet_window(QUIET_WINDOW_S)
        watch.start()
        result = run(attempt)
        machine["others_cores_during"] = watch.others_cores()
        machine["load_average_after"] = load_average()
        machine["load_changed"] = (
            abs(machine["others_cores_during"] - machine["others_cores_before"]) > LOAD_CHANGE_CORES
        )
        attempts.append(machine)
        if not machine["load_changed"]:
            break
        log.info(
            "%s: other processes went from %.2f to %.2f cores%s",
            name,
            machine["others_cores_before"],
            machine["others_cores_during"],
            ": measuring again" if attempt == 0 else "",
        )
    last = attempts[-1]
    result["machine"] = {
        **last,
        "attempts": len(attempts),
        "under_load": max(last["others_cores_before"], last["others_cores_during"]) > BUSY_CORES,
    }
    if len(attempts) > 1:
        result["machine"]["first_attempt"] = attempts[0]
    return result


def watched_phase(
    target: Settings,
    events: list[dict[str, Any]],
    name: str,
    rate: float | None,
    timeout: float,
    watch: MachineWatch,
) -> dict[str, Any]:
    def attempt(number: int) -> dict[str, Any]:
        sent = (
            events if number == 0 else [{**e, "event_id": f"{e['event_id']}-again"} for e in events]
        )
        result = asyncio.run(
            run_phase(target, target.input_topic, target.output_topic, sent, name, rate, timeout)
        )
        return result.summary()

    return watched(watch, name, attempt)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def run_bench(settings: Settings, options: BenchOptions) -> dict[str, Any]:
    from deploy.kafka import launcher

    started = time.time()
    broker = launcher.start(settings)
    watch = MachineWatch([broker.pid] if broker.pid else [])
    tag = uuid.uuid4().hex[:8]
    logs = Path(settings.state_dir) / "bench" / tag
    scorer = _load(settings)
    cache = getattr(scorer, "segment_cache", None)
    if cache is not None:
        scorer.segment_cache = None  # type: ignore[attr-defined]  # as in the workers
    policy = batch_policy(settings, scorer.info.device)
    pool = sentence_pool(seed=options.seed)

    # Size the backlog to about `saturation_seconds` of model-only work.
    probe_texts = texts_for(options.workload, 48, pool, options.seed + 999)
    probe = measure(scorer, probe_texts, policy, count_tokens, repeats=1)
    backlog = round(probe.texts_per_s * options.saturation_seconds)
    backlog = max(options.min_backlog, min(options.max_backlog, backlog))
    texts = texts_for(options.workload, backlog, pool, options.seed)
    timeout = 120.0 + 10.0 * backlog / probe.texts_per_s
    environment = describe(settings, scorer)

    partitions = max(settings.topic_partitions, options.workers)
    group = isolated_settings(settings, f"valence-bench-{tag}", topic_partitions=partitions)
    workers = [
        processes.worker(
            group if n == 0 else _with(group, http_port=processes.free_port()),
            logs / f"worker-{n}.log",
        )
        for n in range(options.workers)
    ]
    naive: processes.Child | None = None
    naive_settings: Settings | None = None
    rounds: list[dict[str, Any]] = []
    loads: list[dict[str, Any]] = []
    memory: dict[str, Any] = {}
    profiled: dict[str, Any] | None = None
    try:
        for worker in workers:
            worker.start()
        if options.naive:
            naive_settings = isolated_settings(settings, f"valence-naive-{tag}")
            naive = processes.Child(
                "naive consumer",
                ["-m", "stream.bench.naive"],
                processes.settings_env(naive_settings),
                logs / "naive.log",
            ).start()
        for worker in workers:
            port = int(worker.env["VALENCE_HTTP_PORT"])
            worker.wait_until(processes.http_ready(port))
        if naive is not None:
            naive.wait_until(processes.log_says(naive, READY))

        spy = (workers[0].pid, options.profile_seconds, logs / "worker.pyspy")
        rounds = _rounds(
            scorer,
            texts,
            policy,
            group,
            naive_settings,
            options.rounds,
            timeout,
            watch,
            spy if options.profile_seconds > 0 else None,
        )
        profiled = rounds[0].pop("worker_profile", None) if rounds else None

        saturated = statistics.median(r["pipeline"].get("throughput") or 0.0 for r in rounds)
        for index, fraction in enumerate(options.loads):
            rate = fraction * saturated
            count = max(20, round(rate * options.load_seconds))
            log.info("offered load %.0f%% = %.1f events/s", fraction * 100, rate)
            load_texts = texts_for(options.workload, count, pool, options.seed + 100 + index)
            events = as_events(load_texts, f"load{index}")
            wait = timeout + options.load_seconds * 3
            phase = watched_phase(group, events, f"load-{fraction:g}", rate, wait, watch)
            loads.append({"fraction": fraction, **phase})
        memory = _memory(workers, naive)
    finally:
        for worker in workers:
            worker.stop()
        if naive is not None:
            naive.stop()

    extra = _studies(settings, scorer, cache, texts, policy, pool, options)
    results = {
        "environment": environment,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars_of(options).items()},
        "batch_policy": vars_of(policy),
        "workload": _workload(texts, options.workload),
        "rounds": rounds,
        "summary": _summary(rounds),
        "loads": loads,
        "memory_mb": memory,
        "worker_profile": profiled,
        **extra,
        "seconds": round(time.time() - started, 1),
    }
    environment["machine"]["load_average_at_end"] = load_average()
    results["machine_load"] = machine_load(results)
    results["targets"] = evaluate_targets(results)
    output = options.output_dir or DEFAULT_OUTPUT / environment["device_kind"]
    results["output_dir"] = str(output)
    write_report(results, output)
    if profiled is not None:  # collapsed stacks: flamegraph.pl or speedscope render them
        shutil.copyfile(logs / "worker.pyspy", output / "worker_profile.collapsed.txt")
    return results


def _rounds(
    scorer: Scorer,
    texts: list[str],
    policy: BatchPolicy,
    group: Settings,
    naive: Settings | None,
    count: int,
    timeout: float,
    watch: MachineWatch,
    spy: tuple[int, float, Path] | None = None,
) -> list[dict[str, Any]]:
    """Model-only, pipeline, naive, per round; model-only is measured again after the last
    round, and each round's ceiling is the mean of the measurements bracketing its pipeline
    phase, so slow drift in the machine's load does not bias the ratio. With `spy`
    (pid, seconds, file), py-spy samples that worker during the first pipeline phase."""

    def model_only() -> dict[str, Any]:
        log.info("model only (%d texts)", len(texts))
        return watched(
            watch,
            "model-only",
            lambda _: measure(scorer, texts, policy, count_tokens, repeats=1).as_dict(),
        )

    ceilings = [model_only()]
    rounds: list[dict[str, Any]] = []
    for number in range(count):
        log.info("round %d: pipeline", number)
        recorder = profile.start(*spy) if spy is not None and number == 0 else None
        pipeline = watched_phase(
            group, as_events(texts, f"r{number}-w"), "saturation", None, timeout, watch
        )
        entry: dict[str, Any] = {"round": number, "pipeline": pipeline}
        if recorder is not None and spy is not None:
            recorder.wait(timeout=spy[1] + 60)
            entry["worker_profile"] = profile.summarize(spy[2])
        if naive is not None:
            log.info("round %d: naive consumer", number)
            events = as_events(texts, f"r{number}-n")
            entry["naive"] = watched_phase(naive, events, "naive", None, timeout * 3, watch)
            entry["pipeline_over_naive"] = _ratio(
                pipeline.get("throughput"), entry["naive"].get("throughput")
            )
        ceilings.append(model_only())
        before, after = ceilings[-2], ceilings[-1]
        entry["model_only"] = {
            **after,
            "texts_per_s": round((before["texts_per_s"] + after["texts_per_s"]) / 2, 2),
            "before_texts_per_s": before["texts_per_s"],
            "after_texts_per_s": after["texts_per_s"],
        }
        entry["pipeline_over_model_only"] = _ratio(
            pipeline.get("throughput"), entry["model_only"]["texts_per_s"]
        )
        rounds.append(entry)
    return rounds


def _with(settings: Settings, **overrides: Any) -> Settings:
    return Settings(**{**settings.model_dump(exclude_none=True), **overrides})


def _memory(workers: list[processes.Child], naive: processes.Child | None) -> dict[str, Any]:
    """Peak RSS per process; `worker` is the largest worker (the target is per process)."""
    each = [worker.memory() for worker in workers]
    memory: dict[str, Any] = {"worker": max(each, key=lambda m: m.get("peak_rss_mb", 0.0))}
    if len(each) > 1:
        memory["workers"] = each
    if naive is not None:
        memory["naive"] = naive.memory()
    return memory


def machine_load(results: dict[str, Any]) -> dict[str, Any]:
    """Every watched phase of a benchmark run, summarised by `load_summary`."""
    phases: list[tuple[str, dict[str, Any]]] = []
    for entry in results.get("rounds", []):
        for key in ("model_only", "pipeline", "naive"):
            if isinstance(entry.get(key), dict) and "machine" in entry[key]:
                phases.append((f"round {entry['round']} {key}", entry[key]["machine"]))
    for load in results.get("loads", []):
        if "machine" in load:
            phases.append((f"load {load['fraction']:g}", load["machine"]))
    return load_summary(phases)


def load_summary(phases: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Whether any of the (name, machine figures) phases was taken under load or repeated."""
    loaded = [name for name, machine in phases if machine["under_load"]]
    return {
        "phases": len(phases),
        "others_cores_max": max((m["others_cores_during"] for _, m in phases), default=None),
        "phases_under_load": loaded,
        "phases_repeated": [name for name, machine in phases if machine["attempts"] > 1],
        "under_load": bool(loaded),
        "rule": f"under load: other processes used more than {BUSY_CORES} cores before or "
        f"during a phase; repeated: their CPU changed by more than {LOAD_CHANGE_CORES} cores",
    }


def vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


def _workload(texts: list[str], name: str) -> dict[str, Any]:
    tokens = sorted(count_tokens(text) for text in texts)
    return {
        "name": name,
        "texts": len(texts),
        "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
        "mean_tokens_estimated": round(statistics.mean(tokens), 1),
        "p50_tokens_estimated": tokens[len(tokens) // 2],
        "max_tokens_estimated": tokens[-1],
    }


def _summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def median_of(path: tuple[str, ...]) -> float | None:
        values = []
        for entry in rounds:
            value: Any = entry
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, int | float):
                values.append(float(value))
        return round(statistics.median(values), 3) if values else None

    return {
        "model_only_texts_per_s": median_of(("model_only", "texts_per_s")),
        "pipeline_texts_per_s": median_of(("pipeline", "throughput")),
        "naive_texts_per_s": median_of(("naive", "throughput")),
        "pipeline_over_model_only": median_of(("pipeline_over_model_only",)),
        "pipeline_over_naive": median_of(("pipeline_over_naive",)),
        "outputs_missing": sum(
            entry[phase].get("missing", 0)
            for entry in rounds
            for phase in ("pipeline", "naive")
            if phase in entry
        ),
        "outputs_duplicated": sum(
            entry[phase].get("duplicates", 0)
            for entry in rounds
            for phase in ("pipeline", "naive")
            if phase in entry
        ),
    }


def _studies(
    settings: Settings,
    scorer: Scorer,
    cache: Any,
    texts: list[str],
    policy: BatchPolicy,
    pool: list[str],
    options: BenchOptions,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sample = texts[: max(40, len(texts) // 3)]
    if options.replay_sessions and cache is not None:
        log.info("editing-session replay (%d sessions)", options.replay_sessions)
        scorer.segment_cache = cache  # type: ignore[attr-defined]
        revisions = editing_sessions(options.replay_sessions, pool, seed=options.seed + 2)
        out["cache_replay"] = cache_replay(scorer, revisions, policy, count_tokens, repeats=2)
        scorer.segment_cache = None  # type: ignore[attr-defined]
    if options.studies:
        log.info("studies: batch sweep, sorting, threads, token counting")
        out["batch_sweep"] = studies.batch_sweep(
            scorer, sample, policy, count_tokens, options.sweep
        )
        out["token_cap_sweep"] = studies.token_cap_sweep(
            scorer, sample, policy, count_tokens, options.token_caps
        )
        out["length_sorting"] = studies.length_sorting(scorer, sample, policy, count_tokens)
        out["torch_threads"] = studies.torch_threads(scorer, sample, policy, count_tokens, (1, 2))
        out["token_counting"] = studies.token_counting(scorer, sample)
        if options.precision_texts and scorer.info.device == "cpu":
            log.info("CPU backends on %d validation texts per task", options.precision_texts)
            out["backends"] = backends.compare(
                settings, texts=len(sample), repeats=1, limit=options.precision_texts
            )
    return out


def bench_command(args: Any, settings: Settings) -> int:
    """`valence bench`: run, write the report, print the summary; 1 when a count mismatched."""
    import shlex
    import sys

    from stream.bench.options import options_from_args

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    command = shlex.join(["valence", *sys.argv[1:]])
    if args.gateway:
        from stream.bench.gateway import main as gateway_main

        return gateway_main(settings, args.output_dir, command)
    if getattr(args, "soak", None):
        from stream.bench.soak import soak_command

        return soak_command(settings, args.soak)
    options = options_from_args(args, command)
    results = run_bench(settings, options)
    summary = results["summary"]
    print(
        f"model-only {summary['model_only_texts_per_s']} texts/s, pipeline "
        f"{summary['pipeline_texts_per_s']} events/s (x{summary['pipeline_over_model_only']}), "
        f"naive {summary['naive_texts_per_s']} events/s "
        f"(pipeline x{summary['pipeline_over_naive']})"
    )
    for target in results["targets"]:
        print(f"  {target['target']}: {target['value']} ({target['bound']}): {target['met']}")
    print(f"results in {results['output_dir']}")
    return 1 if summary["outputs_missing"] or summary["outputs_duplicated"] else 0
