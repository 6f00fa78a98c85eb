"""The benchmark's account of a shared machine: each phase's other-process CPU, a repeat when
it changed, and a report that says when figures were taken under load."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from stream.bench.environment import MachineWatch
from stream.bench.report import _load_line
from stream.bench.runner import load_summary, watched


class ScriptedWatch(MachineWatch):
    """Other processes' CPU as the test says: (before, during) per attempt."""

    def __init__(self, readings: list[tuple[float, float]]) -> None:
        super().__init__()
        self.readings = readings
        self.attempt = -1

    def quiet_window(self, seconds: float = 2.0) -> float:
        self.attempt += 1
        return self.readings[self.attempt][0]

    def start(self) -> None:
        return None

    def others_cores(self) -> float:
        return self.readings[self.attempt][1]


def test_a_phase_whose_load_changed_is_run_again_and_the_second_kept() -> None:
    runs: list[int] = []

    def phase(attempt: int) -> dict[str, Any]:
        runs.append(attempt)
        return {"throughput": 10.0 + attempt}

    result = watched(ScriptedWatch([(0.0, 1.2), (0.05, 0.1)]), "saturation", phase)
    assert runs == [0, 1]
    assert result["throughput"] == 11.0
    machine = result["machine"]
    assert machine["attempts"] == 2 and machine["first_attempt"]["load_changed"]
    assert not machine["load_changed"] and not machine["under_load"]


def test_a_steady_phase_runs_once_and_steady_load_is_reported_as_load() -> None:
    runs: list[int] = []
    result = watched(ScriptedWatch([(1.0, 1.1)]), "load-0.7", lambda a: runs.append(a) or {})
    assert runs == [0]
    assert result["machine"]["under_load"] and result["machine"]["attempts"] == 1
    summary = load_summary([("load 0.7", result["machine"])])
    assert summary["under_load"] and summary["phases_under_load"] == ["load 0.7"]
    assert "**Taken under load**" in _load_line(summary, 2)
    quiet = load_summary([("x", {**result["machine"], "under_load": False})])
    assert _load_line(quiet, 2).startswith("Quiet machine")


def test_others_cores_is_machine_busy_time_minus_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream.bench import environment

    busy = iter([100.0, 103.0])  # all CPUs' busy seconds, at start and end
    ours = iter([10.0, 11.5])  # our process tree's CPU seconds
    clock = iter([50.0, 52.0])
    monkeypatch.setattr(environment, "_busy_seconds", lambda: next(busy))
    monkeypatch.setattr(environment, "_cpu_seconds", lambda pids: next(ours))
    monkeypatch.setattr(environment.time, "monotonic", lambda: next(clock))
    watch = MachineWatch()
    watch.start()
    assert watch.others_cores() == 0.75  # (3 - 1.5) CPU seconds over 2 s


def test_our_children_count_as_ours() -> None:
    from stream.bench.environment import _process_tree

    child = subprocess.Popen(["sleep", "5"])
    try:
        assert child.pid in _process_tree([os.getpid()])
        assert 1 not in _process_tree([os.getpid()])
    finally:
        child.kill()
        child.wait()
