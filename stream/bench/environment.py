"""What a result was measured on: machine, device, versions, load, code revision."""

from __future__ import annotations

import os
import platform
import subprocess
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
