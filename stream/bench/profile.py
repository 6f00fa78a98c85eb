"""Sample the worker with py-spy while it is saturated, and say where its CPU went.

py-spy (PyPI `py-spy`) attaches to the running child process from outside, so the worker
runs unmodified; without it the benchmark simply records no profile. Only busy samples are
kept (no `--idle`), so a thread's share of samples is its share of CPU-active time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^()]+?)(?::\d+)?\)$")


def start(pid: int, seconds: float, output: Path, rate: int = 50) -> subprocess.Popen[bytes] | None:
    """Begin recording `pid` for `seconds` into `output` (raw collapsed stacks)."""
    # The venv's bin folder is often not on PATH: look beside this interpreter too.
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if spy is None:
        return None
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            str(rate),
            "--threads",
            "--format",
            "raw",
            "--nonblocking",
            "-o",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Frames every stack of a thread passes through: they say nothing about where time goes.
_TRUNK_FILES = (
    "threading.py",
    "runpy>",
    "base_events.py",
    "events.py",
    "selectors.py",
    "mode/threads.py",
    "mode/worker.py",
    "stream/cli/main.py",
    "concurrent/futures/thread.py",
)
# A thread whose innermost frame is one of these is waiting, not working.
_IDLE_LEAVES = ("select", "_worker", "wait", "sleep", "_wait_for_tstate_lock", "acquire")


def _thread_kind(thread: str, frames: list[str]) -> str:
    name = thread.split(":", 1)[-1].strip()
    if name.startswith("valence-model"):
        return "model thread"
    if name == "MainThread":
        return "main thread (faust event loop)"
    if any("ServiceThread" in frame for frame in frames):
        return "faust consumer thread"
    return name or "other"


def _split(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    return match["function"], match["file"]


def _is_idle(frames: list[str]) -> bool:
    if not frames:
        return True
    function, _ = _split(frames[-1])
    return function.rsplit(".", 1)[-1] in _IDLE_LEAVES


def summarize(raw: Path, top: int = 15) -> dict[str, Any]:
    """Busy samples per thread kind; per kind, the innermost frames (self time) and the
    functions most often anywhere on the stack (inclusive), as shares of the thread."""
    per_thread: Counter[str] = Counter()
    idle = 0
    leaves: dict[str, Counter[str]] = {}
    inclusive: dict[str, Counter[str]] = {}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        thread, *frames = stack.split(";")
        if _is_idle(frames):
            idle += count
            continue
        kind = _thread_kind(thread, frames)
        per_thread[kind] += count
        function, file = _split(frames[-1])
        leaves.setdefault(kind, Counter())[f"{Path(file).name}:{function}"] += count
        functions = set()
        for frame in frames:
            function, file = _split(frame)
            if not file.endswith(_TRUNK_FILES):
                functions.add(f"{Path(file).name}:{function}")
        inclusive.setdefault(kind, Counter()).update(dict.fromkeys(functions, count))
    total = sum(per_thread.values()) or 1

    def shares(by_thread: dict[str, Counter[str]]) -> dict[str, list[dict[str, Any]]]:
        """Each busy thread's top functions, as shares of that thread's samples."""
        return {
            kind: [
                {"function": name, "share_of_thread": round(n / per_thread[kind], 3)}
                for name, n in counter.most_common(top)
            ]
            for kind, counter in by_thread.items()
            if per_thread[kind] >= 0.02 * total
        }

    return {
        "samples": sum(per_thread.values()),
        "idle_samples_dropped": idle,
        "share_by_thread": {k: round(v / total, 3) for k, v in per_thread.most_common()},
        "top_self_by_thread": shares(leaves),
        "top_functions_by_thread": shares(inclusive),
    }
