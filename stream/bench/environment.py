"""What a result was measured on: machine, device, versions, load, code revision."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from models.base import Scorer
from stream.config import Settings

PACKAGES = ("torch", "transformers", "tokenizers", "faust-streaming", "aiokafka", "orjson", "numpy")
ROOT = Path(__file__).resolve().parents[2]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    return {"commit": run("rev-parse", "HEAD"), "dirty": bool(run("status", "--porcelain"))}


def load_average() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def busy_processes(count: int = 6) -> list[str]:
    """The machine's busiest processes (CPU %, command), to judge how quiet a run was."""
    try:
        listing = subprocess.run(
            ["ps", "-eo", "pcpu,args", "--sort=-pcpu"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()[1 : count + 1]
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip()[:110] for line in listing]


def describe(settings: Settings, scorer: Scorer) -> dict[str, Any]:
    info = scorer.info
    device = {"device": info.device, "dtype": info.dtype}
    if info.device.startswith("cuda"):
        device["gpu"] = torch.cuda.get_device_name(0)
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "memory_gib": _memory_gib(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": load_average(),
            "busy_processes_at_start": busy_processes(),
        },
        "device_kind": "cuda" if info.device.startswith("cuda") else "cpu",
        **device,
        "torch_threads": torch.get_num_threads(),
        "model": {
            "name": info.name,
            "version": info.version,
            "backbone": info.backbone,
            "path": str(settings.model_path),
        },
        "kafka_version": settings.kafka_version,
        "versions": versions,
        "git": _git(),
    }


# --- how busy the machine was with other work, per phase ---------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
# Other processes' CPU (in cores) that makes a phase's figures suspect when it changes by
# more than this between the quiet window before a phase and the phase itself.
LOAD_CHANGE_CORES = 0.5
# Other processes using more than this many cores during a phase: the report says the
# figures were taken under load.
BUSY_CORES = 0.25


def _busy_seconds() -> float:
    """CPU seconds all CPUs spent busy since boot (/proc/stat; 0 where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def _process_tree(roots: list[int]) -> set[int]:
    """`roots` and all their descendants."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            parents[int(stat.parent.name)] = int(text[text.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def _cpu_seconds(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
            fields = text[text.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, ValueError, IndexError):
            continue
    return total / _TICKS


class MachineWatch:
    """CPU used by processes that are not the benchmark's own (this process, its children,
    and `extra_pids`, e.g. a broker started earlier), in cores, over a window.

    The load average counts the benchmark's own worker and broker, so it cannot say whether
    someone else was busy; CPU time by process can."""

    def __init__(self, extra_pids: list[int] | None = None):
        self.extra_pids = [pid for pid in (extra_pids or []) if pid]
        self._started: tuple[float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float]:
        ours = _process_tree([os.getpid(), *self.extra_pids])
        return time.monotonic(), _busy_seconds(), _cpu_seconds(ours)

    def start(self) -> None:
        self._started = self._sample()

    def others_cores(self) -> float:
        """Cores used by other processes since `start`."""
        if self._started is None:
            raise RuntimeError("start() first")
        wall0, busy0, ours0 = self._started
        wall1, busy1, ours1 = self._sample()
        if wall1 <= wall0:
            return 0.0
        return round(max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (wall1 - wall0), 2)

    def quiet_window(self, seconds: float = 2.0) -> float:
        """Others' cores over `seconds` while the benchmark itself waits."""
        self.start()
        time.sleep(seconds)
        return self.others_cores()
