"""A real Prometheus server scrapes a real `valence worker` while events flow, and its
PromQL answers are sane: p99 end-to-end latency, lag per partition, the alert rules and
every dashboard query. Also: /ready after start, and lag series that follow a rebalance.

The server is the Debian package's `prometheus` binary (CI installs it); a missing binary
fails the test.
"""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from stream.cli.client import editor_event, send_events
from stream.config import Settings
from tests.integration.workers import WorkerProcess, collect, free_port, isolated_settings
from tests.unit.test_deploy_files import ALERTS, dashboard_queries, grafana_to_promql

ALERT_RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
P99_QUERY = (
    "histogram_quantile(0.99, sum(rate(valence_end_to_end_latency_seconds_bucket[1m])) by (le))"
)
PARTITIONS = 3  # isolated_settings creates the input topic with 3 partitions


@dataclass
class WatchedWorker(WorkerProcess):
    ready_answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        return list(self.api("query", query=promql)["result"])

    def wait_for(
        self, promql: str, ok: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 45
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if ok(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} never satisfied; last answer {result}")
            time.sleep(1)


def values(result: list[dict[str, Any]]) -> list[float]:
    return [float(series["value"][1]) for series in result]


# One worker for the module: starting one (model load and warm-up) is most of the time.
@pytest.fixture(scope="module")
def settings(kafka: Settings) -> Settings:
    return isolated_settings(kafka)


@pytest.fixture(scope="module")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatchedWorker]:
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    process = WatchedWorker(settings, log_path).start()
    try:
        process.ready_answers = _watch_ready(process)
        yield process
    finally:
        process.stop()


@pytest.fixture
def prometheus(worker: WorkerProcess, tmp_path: Path) -> Iterator[PrometheusServer]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: apt-get install prometheus", pytrace=False)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERT_RULES)],
        "scrape_configs": [
            {
                "job_name": "valence",
                "static_configs": [{"targets": [f"127.0.0.1:{worker.settings.http_port}"]}],
            }
        ],
    }
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _watch_ready(worker: WorkerProcess, timeout_s: float = 180) -> list[tuple[int, dict[str, Any]]]:
    """Poll /ready often from the start until it answers 200; every answer seen."""
    answers: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.assert_alive()
        try:
            status, body = worker.http("/ready")
        except OSError:  # the interpreter is still importing
            time.sleep(0.1)
            continue
        answers.append((status, json.loads(body)))
        if status == 200:
            return answers
        time.sleep(0.05)
    raise AssertionError(f"worker not ready in {timeout_s}s:\n{worker.log_tail()}")


def _wait_ready(server: PrometheusServer, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{server.log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prometheus not ready in {timeout_s}s:\n{server.log_path.read_text()}")


def _send_waves(settings: Settings, waves: int, per_wave: int, pause_s: float) -> set[str]:
    ids: set[str] = set()
    for wave in range(waves):
        events = [
            editor_event(
                f"Wave {wave}: I am {'thrilled' if i % 2 else 'worried'} about draft {i}.",
                doc_id=f"doc-{i % 5}",
                event_id=f"w{wave}-{i}",
            )
            for i in range(per_wave)
        ]
        asyncio.run(send_events(settings, events))
        ids |= {event["event_id"] for event in events}
        time.sleep(pause_s)
    return ids


def test_prometheus_scrapes_sane_latency_and_lag_from_a_live_worker(
    settings: Settings, worker: WatchedWorker, prometheus: PrometheusServer
) -> None:
    # Ready only once the model is warm and the consumer holds its partitions. The HTTP
    # server answers from process start, so the first answers are 503s while the model
    # loads; every answer seen from the very start is checked.
    answers = worker.ready_answers
    assert answers[0][0] == 503 and answers[0][1]["model_ready"] is False, answers[0]
    for status, ready in answers:
        assert ready.keys() >= {"model_ready", "rebalancing", "assigned_partitions"}
        if status == 200:
            assert ready["model_ready"] is True
            assert ready["rebalancing"] is False and ready["assigned_partitions"] >= PARTITIONS
        else:
            assert status == 503
    status, body = worker.http("/ready")
    assert status == 200 and json.loads(body)["assigned_partitions"] >= PARTITIONS
    assert worker.http("/health")[0] == 200

    sent = _send_waves(settings, waves=4, per_wave=25, pause_s=2)
    scored = collect(settings, settings.output_topic, until=sent, timeout_s=120)
    assert {record["value"]["event_id"] for record in scored} >= sent

    prometheus.wait_for(
        "sum(valence_end_to_end_latency_seconds_count)",
        lambda result: bool(result) and values(result)[0] >= len(sent),
    )
    (p99,) = values(prometheus.wait_for(P99_QUERY, lambda result: len(result) == 1))
    assert math.isfinite(p99) and 0 < p99 <= 30, p99

    topic = settings.input_topic
    lag = prometheus.wait_for(
        f'valence_consumer_lag_messages{{topic="{topic}"}}',
        lambda result: len(result) == PARTITIONS,
    )
    assert all(value >= 0 for value in values(lag))
    assert {series["metric"]["partition"] for series in lag} == {"0", "1", "2"}
    # Everything is scored and committed: the lag drains to zero.
    prometheus.wait_for(
        f'sum(valence_consumer_lag_messages{{topic="{topic}"}})',
        lambda result: bool(result) and values(result) == [0.0],
    )
    assigned = prometheus.query(f'valence_consumer_assigned_partitions{{topic="{topic}"}}')
    assert values(assigned) == [PARTITIONS]
    assert values(prometheus.query("valence_consumer_rebalances_total")) >= [1]
    assert values(prometheus.query("valence_consumer_commit_latency_seconds_count"))[0] >= 1
    assert values(prometheus.query('up{job="valence"}')) == [1]

    # The alert rules load and evaluate on live data without error ...
    groups = prometheus.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == ALERTS
    assert all(rule["health"] == "ok" for rule in rules), rules
    assert not [rule for rule in rules if rule["state"] == "firing"]
    # ... and so does every dashboard query.
    for query in dashboard_queries():
        if not query.startswith("label_values("):
            prometheus.query(grafana_to_promql(query))


def _lag_partitions(worker: WorkerProcess, topic: str) -> set[str]:
    status, text = worker.http("/metrics")
    assert status == 200
    return {
        sample.labels["partition"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "valence_consumer_lag_messages" and sample.labels["topic"] == topic
    }


def _wait_partitions(worker: WorkerProcess, topic: str, ok: Callable[[set[str]], bool]) -> set[str]:
    deadline = time.monotonic() + 60
    while not ok(partitions := _lag_partitions(worker, topic)):
        assert time.monotonic() < deadline, f"lag series stuck at {partitions}"
        time.sleep(1)
    return partitions


def test_lag_series_follow_the_assignment_after_a_rebalance(
    settings: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    topic = settings.input_topic
    everything = {"0", "1", "2"}
    _wait_partitions(worker, topic, lambda partitions: partitions == everything)
    # Same group and topics, its own HTTP port.
    second_settings = settings.model_copy(update={"http_port": free_port()})
    second = WorkerProcess(second_settings, tmp_path / "second.log").start()
    try:
        second.wait_ready()
        # Two workers split the partitions; the first drops the series it lost.
        mine = _wait_partitions(worker, topic, lambda p: 0 < len(p) < len(everything))
        theirs = _wait_partitions(second, topic, lambda p: p == everything - mine)
        assert json.loads(worker.http("/ready")[1])["assigned_partitions"] >= len(mine)
        assert mine | theirs == everything
    finally:
        second.stop()
    # The second worker left: the first takes every partition (and series) back.
    _wait_partitions(worker, topic, lambda partitions: partitions == everything)
