"""`valence bench --quick` as a regression check: the worker keeps up with its own model.

Runs the real benchmark (the shipped model, a `valence worker` child process, the session's
broker) in quick mode and fails when the saturated pipeline moves less than 0.8x what the
model alone scores on the same backlog in the same run (twice in a row), or when any
output is missing or duplicated. Only ratios within the run are asserted, never absolute times.
"""

from __future__ import annotations

from pathlib import Path

from stream.batching import BatchPolicy
from stream.bench.load_phase import Observed, saturated_throughput
from stream.bench.model_only import plan_batches
from stream.bench.options import BenchOptions
from stream.bench.runner import run_bench
from stream.bench.workload import editing_sessions, realistic_texts, sentence_pool
from stream.config import Settings

MIN_PIPELINE_OVER_MODEL_ONLY = 0.8


def test_quick_bench_pipeline_keeps_up_with_the_model(kafka: Settings, tmp_path: Path) -> None:
    # A second, independent run is made only when the first falls below the bound: a noisy
    # window on a shared CPU passes on the rerun, a real regression fails both.
    for attempt in range(2):
        output = tmp_path / f"bench-{attempt}"
        results = run_bench(kafka, BenchOptions.quick_mode(output_dir=output))
        phases = [entry["pipeline"] for entry in results["rounds"]] + results["loads"]
        for phase in phases:
            assert phase["scored"] == phase["sent"], phase
            assert phase["duplicates"] == 0, phase
        for name in ("results.json", "results.md", "latency_vs_load.png"):
            assert (output / name).is_file(), name
        ratio = results["summary"]["pipeline_over_model_only"]
        assert ratio is not None, results["rounds"]
        if ratio >= MIN_PIPELINE_OVER_MODEL_ONLY:
            return
    raise AssertionError(
        f"saturated pipeline / model-only = {ratio} < {MIN_PIPELINE_OVER_MODEL_ONLY} "
        f"in two runs: {results['rounds']}"
    )


# --- the benchmark's own arithmetic (no broker needed) -----------------------------------------


def test_backlog_batches_follow_the_worker_policy() -> None:
    policy = BatchPolicy(max_events=3, max_tokens=100)
    assert plan_batches([10, 10, 10, 10, 95, 20, 200, 5], policy) == [
        [0, 1, 2],  # the event cap
        [3],  # 10 + 95 would pass the token cap
        [4],
        [5],
        [6],  # alone over the cap, still accepted
        [7],
    ]


def test_saturated_throughput_spans_first_pickup_to_last_score() -> None:
    observed = [Observed(0.0, 10.0 + i / 10, 11.0 + i, 11.5 + i, 1) for i in range(4)]
    assert saturated_throughput(observed) == 4 / (14.0 - 10.0)


def test_workloads_are_seeded_and_mixed() -> None:
    pool = sentence_pool()
    assert realistic_texts(50, pool, seed=3) == realistic_texts(50, pool, seed=3)
    lengths = sorted(len(text) for text in realistic_texts(400, pool, seed=3))
    assert lengths[len(lengths) // 2] < 400 < lengths[-1]  # mostly short, some long
    sessions = editing_sessions(9, pool, seed=4)
    assert {rev.kind for rev in sessions} == {"typing", "pasting", "editing"}
    by_session: dict[str, list[int]] = {}
    for rev in sessions:
        by_session.setdefault(rev.session, []).append(rev.revision)
    assert all(revs == list(range(1, len(revs) + 1)) for revs in by_session.values())
