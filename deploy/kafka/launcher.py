"""A real single-node Apache Kafka 4.x broker (KRaft: broker and controller in one JVM).

There is no Docker and Debian ships no Kafka, so the broker's jars come from Maven Central
(`deploy/kafka/pom.xml`) into ``~/.cache/valence/kafka-<version>/libs`` and run with the
system's Java 17. Everything the broker writes lives under ``<settings.state_dir>/kafka``:

    server.properties   rendered from server.properties.template
    data/               the KRaft metadata log and topic data (formatted once)
    kafka.log           the broker's stdout/stderr (log4j writes to stdout)
    kafka.pid           pid of the running broker; kafka.version: the version it runs

The broker listens on 127.0.0.1:<settings.kafka_port> (PLAINTEXT) and its controller on
kafka_port + 1. The public functions back the CLI: ``valence kafka start`` is `start`,
``valence kafka stop`` is `stop`, ``valence kafka status`` is `status`; the integration
tests' session fixture uses the same three. ``python -m deploy.kafka.launcher fetch``
resolves the jars only (CI does it before the tests).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.config import Settings

KAFKA_DIR = Path(__file__).resolve().parent
POM = KAFKA_DIR / "pom.xml"
TEMPLATE = KAFKA_DIR / "server.properties.template"
LOG4J_CONFIG = KAFKA_DIR / "log4j2.properties"
CACHE_DIR = Path.home() / ".cache" / "valence"

# A small, single-threaded-GC JVM: this broker shares a 2-core box with the model.
BROKER_JVM_OPTS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
# The storage tool runs for a few seconds: skip the optimising JIT.
TOOL_JVM_OPTS = ("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
LOG_ROTATE_BYTES = 50 * 1024 * 1024
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


# Brokers started by this process, kept so they are polled and reaped through Popen.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class KafkaLauncherError(RuntimeError):
    """The local broker could not be fetched, started or stopped; the message says why."""


@dataclass(frozen=True)
class KafkaStatus:
    """What `status` sees: whether our broker process is alive, and where to find it."""

    running: bool
    pid: int | None
    bootstrap: str
    log_file: Path
    version: str


@dataclass(frozen=True)
class _Paths:
    base: Path

    @property
    def config(self) -> Path:
        return self.base / "server.properties"

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def log(self) -> Path:
        return self.base / "kafka.log"

    @property
    def pid(self) -> Path:
        return self.base / "kafka.pid"

    @property
    def version(self) -> Path:
        return self.base / "kafka.version"


def _paths(settings: Settings) -> _Paths:
    # Absolute, so the rendered config and the pid check do not depend on the cwd later.
    return _Paths((Path(settings.state_dir) / "kafka").resolve())


def _bootstrap(settings: Settings) -> str:
    return f"127.0.0.1:{settings.kafka_port}"


def _controller_port(settings: Settings) -> int:
    return settings.kafka_port + 1


# --- Artifacts --------------------------------------------------------------------------


def libs_dir(settings: Settings, cache_dir: Path = CACHE_DIR) -> Path:
    """Where the jars of `settings.kafka_version` live (outside the git tree)."""
    return cache_dir / f"kafka-{settings.kafka_version}" / "libs"


def ensure_artifacts(settings: Settings, cache_dir: Path = CACHE_DIR) -> Path:
    """Resolve the broker's jars with Maven unless already cached; return the libs folder.

    Maven's own repository stays ~/.m2, so a second resolve downloads nothing.
    """
    libs = libs_dir(settings, cache_dir)
    if (libs / _main_jar(settings)).is_file():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaLauncherError("maven not found: install Maven 3.8+ (mvn) to fetch Kafka")
    libs.parent.mkdir(parents=True, exist_ok=True)
    # Resolve into a scratch folder and rename it: an interrupted run leaves no half libs/.
    scratch = Path(tempfile.mkdtemp(prefix="libs.partial-", dir=libs.parent))
    try:
        _run_maven(mvn, settings.kafka_version, scratch)
        if not (scratch / _main_jar(settings)).is_file():
            raise KafkaLauncherError(f"maven failed: {_main_jar(settings)} was not resolved")
        with contextlib.suppress(OSError):  # a concurrent fetch may have won the race
            scratch.rename(libs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):  # leave no empty kafka-<version>/ after a failure
            libs.parent.rmdir()
    return libs


def _main_jar(settings: Settings) -> str:
    return f"kafka_2.13-{settings.kafka_version}.jar"


def _run_maven(mvn: str, version: str, output_dir: Path) -> None:
    cmd = [
        mvn, "-B", "-q", "-Dstyle.color=never", "-f", str(POM),
        f"-Dkafka.version={version}", "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={output_dir}",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KafkaLauncherError(f"maven failed: {_maven_error(done.stdout + done.stderr)}")


def _maven_error(output: str) -> str:
    # Maven's first [ERROR] line names the cause; the later ones are generic advice.
    lines = [ANSI_ESCAPE.sub("", line).strip() for line in output.splitlines()]
    errors = [line for line in lines if line.startswith("[ERROR]") and line != "[ERROR]"]
    return (errors or [line for line in lines if line] or ["no output"])[0][:300]


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR" in line or "Exception" in line]
    return (errors or lines or ["no output"])[-1][:300]


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaLauncherError("java not found: install Java 17+ to run the local Kafka broker")
    return java


# --- Configuration and storage ------------------------------------------------------------


def _render_config(settings: Settings, paths: _Paths) -> None:
    text = Template(TEMPLATE.read_text()).substitute(
        kafka_port=settings.kafka_port,
        controller_port=_controller_port(settings),
        log_dir=str(paths.data),
    )
    paths.config.write_text(text)


def _cluster_id() -> str:
    """A Kafka Uuid string: url-safe base64 of 16 random bytes, unpadded.

    Kafka never hands out ids starting with '-' (they read as a command-line flag).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def _format_storage(java: str, libs: Path, paths: _Paths) -> None:
    """Format the KRaft storage once (what `kafka-storage.sh format` does)."""
    if (paths.data / "meta.properties").is_file():
        return
    cmd = [
        java, *TOOL_JVM_OPTS, "-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "kafka.tools.StorageTool", "format", "--ignore-formatted",
        "--cluster-id", _cluster_id(), "--config", str(paths.config),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise KafkaLauncherError(
            f"kafka storage format failed: {_last_error_line(done.stdout + done.stderr)}"
        )


# --- Process bookkeeping ----------------------------------------------------------------


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone)."""
    child = _CHILDREN.get(pid)
    if child is not None:  # our own child: poll() also reaps it once it exits
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        # State is the field after "(comm)"; Z is a zombie that its parent has not reaped.
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _is_our_broker(pid: int, paths: _Paths) -> bool:
    """Guards against a recycled pid: the process must be kafka.Kafka on our config."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():  # no procfs (not Linux): trust the pid file
        return True
    try:
        args = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in args and str(paths.config).encode() in args


def _read_pid(paths: _Paths) -> int | None:
    """The pid of our running broker, or None; a stale pid file is removed."""
    try:
        pid = int(paths.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid) and _is_our_broker(pid, paths):
        return pid
    paths.pid.unlink(missing_ok=True)
    return None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _rotate_log(log: Path) -> None:
    if log.is_file() and log.stat().st_size > LOG_ROTATE_BYTES:
        log.replace(log.with_name(log.name + ".1"))


def _spawn(java: str, libs: Path, paths: _Paths) -> subprocess.Popen[bytes]:
    _rotate_log(paths.log)
    cmd = [
        java, *BROKER_JVM_OPTS, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp", f"{libs}/*", "kafka.Kafka", str(paths.config),
    ]  # fmt: skip
    with paths.log.open("ab") as log:
        # A new session: the broker outlives this process and ignores the terminal's Ctrl-C.
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=paths.base,
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    return process


# --- Readiness ----------------------------------------------------------------------------


async def _metadata_brokers(bootstrap: str) -> int:
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await client.bootstrap()
        return len(client.cluster.brokers())
    finally:
        await client.close()


def _broker_answers(port: int) -> bool:
    """True once a metadata request lists a live broker (fenced brokers are not listed).

    Runs its own event loop in a worker thread, so callers inside a running loop work too.
    """
    if not _port_in_use(port):  # cheap check first; keeps aiokafka's error logs quiet
        return False
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            probe = _metadata_brokers(f"127.0.0.1:{port}")
            return pool.submit(asyncio.run, probe).result() > 0
        except Exception:  # any connection or protocol error means "not yet"
            return False


def _wait_until_ready(
    process: subprocess.Popen[bytes], settings: Settings, paths: _Paths, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise KafkaLauncherError(
                f"broker exited with code {code} during start-up, see {paths.log}: "
                f"{_last_error_line(_tail(paths.log))}"
            )
        if _broker_answers(settings.kafka_port):
            return
        time.sleep(0.5)
    _terminate(process.pid, timeout_s=10)
    paths.pid.unlink(missing_ok=True)
    raise KafkaLauncherError(f"broker did not answer within {timeout_s:g}s, see {paths.log}")


def _tail(log: Path, size: int = 20_000) -> str:
    with log.open("rb") as handle:
        handle.seek(max(0, log.stat().st_size - size))
        return handle.read().decode(errors="replace")


def _terminate(pid: int, timeout_s: float) -> None:
    """SIGTERM (Kafka shuts down cleanly), then SIGKILL if it is still alive after timeout_s."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while _alive(pid):
        if time.monotonic() > deadline:
            raise KafkaLauncherError(f"broker pid {pid} survived SIGKILL for 10s")
        time.sleep(0.1)


# --- Public API -----------------------------------------------------------------------


def status(settings: Settings) -> KafkaStatus:
    """State of the local broker under `settings.state_dir` (`valence kafka status`).

    `running` means our broker process is alive (a stale pid file is cleaned up); it does
    not probe the port, so it is cheap.
    """
    paths = _paths(settings)
    pid = _read_pid(paths)
    version = settings.kafka_version
    if pid is not None and paths.version.is_file():
        version = paths.version.read_text().strip()
    return KafkaStatus(pid is not None, pid, _bootstrap(settings), paths.log, version)


def start(settings: Settings, timeout_s: float = 120, secure: bool = False) -> KafkaStatus:
    """Start the local broker detached and wait until it answers (`valence kafka start`).

    Fetches the jars and formats the storage on first use. Idempotent: when our broker is
    already running this returns its status at once. Raises KafkaLauncherError if the
    ports are taken by something else, or the broker exits or stays silent for timeout_s.
    `secure` adds a SASL_SSL listener (deploy/kafka/secure.py).
    """
    from deploy.kafka import secure as secure_listener

    current = status(settings)
    if current.running:
        return current
    ports = [settings.kafka_port, _controller_port(settings)]
    if secure:
        ports.append(secure_listener.secure_port(settings))
    for port in ports:
        if _port_in_use(port):
            raise KafkaLauncherError(f"port {port} is already in use by another process")
    java = _java()
    libs = ensure_artifacts(settings)
    paths = _paths(settings)
    paths.data.mkdir(parents=True, exist_ok=True)
    _render_config(settings, paths)
    try:
        if secure:
            with paths.config.open("a") as config:
                config.write(secure_listener.config_lines(settings))
        _format_storage(java, libs, paths)
        process = _spawn(java, libs, paths)
        paths.pid.write_text(f"{process.pid}\n")
        paths.version.write_text(f"{settings.kafka_version}\n")
        _wait_until_ready(process, settings, paths, timeout_s)
        if secure:
            secure_listener.add_user(java, libs, settings)
    except secure_listener.SecureSetupError as error:
        raise KafkaLauncherError(str(error)) from None
    return status(settings)


def stop(settings: Settings, timeout_s: float = 30) -> KafkaStatus:
    """Stop the local broker (`valence kafka stop`): SIGTERM, then SIGKILL after timeout_s.

    A no-op when it is not running. Topic data stays under the state dir for the next start.
    """
    paths = _paths(settings)
    pid = _read_pid(paths)
    if pid is not None:
        _terminate(pid, timeout_s)
        paths.pid.unlink(missing_ok=True)
    return status(settings)


def main(argv: list[str] | None = None) -> int:
    """`python -m deploy.kafka.launcher fetch|start|stop|status` (settings from VALENCE_*)."""
    from stream.config import Settings

    parser = argparse.ArgumentParser(prog="python -m deploy.kafka.launcher")
    parser.add_argument("command", choices=("fetch", "start", "stop", "status"))
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        if args.command == "fetch":
            print(ensure_artifacts(settings))
            return 0
        actions = {"start": start, "stop": stop, "status": status}
        result = actions[args.command](settings)
    except KafkaLauncherError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"kafka {result.version}: {'running' if result.running else 'stopped'}"
        f" pid={result.pid} bootstrap={result.bootstrap} log={result.log_file}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
