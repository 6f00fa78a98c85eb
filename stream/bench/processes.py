"""Child processes the benchmark drives: the real `valence worker` and the naive consumer.

Each runs as its own Python process with its settings in `VALENCE_*` variables, exactly as
deployed; the benchmark reads its resident memory from /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stream.config import Settings
from stream.errors import ValenceError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude_none=True).items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"VALENCE_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM), in MiB; empty when unreadable."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[{"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}[name]] = int(rest.split()[0]) / 1024
    return values


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.argv], stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise ValenceError(f"{self.name} exited ({code}); log:\n{self.log_tail()}")

    def wait_until(self, ready: Callable[[], bool], timeout_s: float = 240.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if ready():
                return
            time.sleep(0.3)
        raise ValenceError(f"{self.name} not ready after {timeout_s:g}s; log:\n{self.log_tail()}")

    def memory(self) -> dict[str, float]:
        return memory_mb(self.pid) if self.process is not None else {}

    def stop(self, timeout_s: float = 60.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def worker(settings: Settings, log_path: Path) -> Child:
    return Child("worker", ["-m", "stream.cli.main", "worker"], settings_env(settings), log_path)


def http_ready(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as reply:
                return bool(reply.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    return ready


def log_says(child: Child, marker: str) -> Callable[[], bool]:
    return lambda: marker in child.log_tail(200)


def gateway(settings: Settings, log_path: Path) -> Child:
    """`valence gateway`; ready when `http_ready(settings.gateway_port)` answers."""
    return Child(
        f"gateway:{settings.gateway_port}",
        ["-m", "stream.cli", "gateway"],
        settings_env(settings),
        log_path,
    )
