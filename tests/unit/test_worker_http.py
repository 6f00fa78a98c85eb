"""/health, /ready and valence_worker_ready as the worker serves them from process start."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from stream.http import build_http_app
from stream.metrics import ValenceMetrics
from stream.worker import WorkerProbes


async def answers(probes: WorkerProbes) -> dict[str, tuple[int, Any]]:
    """Status and body of each endpoint, from a real aiohttp server on a free port."""
    client = TestClient(TestServer(build_http_app(probes.metrics, probes.ready, probes.live)))
    await client.start_server()
    try:
        result: dict[str, tuple[int, Any]] = {}
        for path in ("/health", "/ready"):
            response = await client.get(path)
            result[path] = (response.status, await response.json())
        response = await client.get("/metrics")
        result["/metrics"] = (response.status, await response.text())
        return result
    finally:
        await client.close()


def fake_app(generation_id: int, rebalancing: bool, partitions: int) -> Any:
    consumer = SimpleNamespace(assignment=lambda: {("in", p) for p in range(partitions)})
    return SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=generation_id,
        rebalancing=rebalancing,
        lifecycle=SimpleNamespace(stopping=False),
    )


def test_while_the_model_loads_health_answers_and_ready_does_not() -> None:
    readiness = WorkerProbes(ValenceMetrics.create(CollectorRegistry()))
    result = asyncio.run(answers(readiness))
    assert result["/health"][0] == 200 and result["/health"][1]["starting"] is True
    assert result["/ready"] == (
        503,
        {
            "status": "not ready",
            "model_ready": False,
            "rebalancing": False,
            "stopping": False,
            "assigned_partitions": 0,
        },
    )
    assert "valence_worker_ready 0.0" in result["/metrics"][1]


def test_a_warm_model_without_an_assignment_is_not_ready() -> None:
    metrics = ValenceMetrics.create(CollectorRegistry())
    metrics.model_ready.set(1)
    for app in (None, fake_app(generation_id=0, rebalancing=False, partitions=0)):
        readiness = WorkerProbes(metrics, app)
        result = asyncio.run(answers(readiness))
        assert result["/health"][0] == 200
        assert result["/ready"][0] == 503
        assert result["/ready"][1]["model_ready"] is True
        assert "valence_worker_ready 0.0" in result["/metrics"][1]


def test_ready_once_joined_and_not_while_rebalancing() -> None:
    metrics = ValenceMetrics.create(CollectorRegistry())
    metrics.model_ready.set(1)
    joined = asyncio.run(answers(WorkerProbes(metrics, fake_app(3, False, partitions=2))))
    assert joined["/ready"] == (
        200,
        {
            "status": "ready",
            "model_ready": True,
            "rebalancing": False,
            "stopping": False,
            "assigned_partitions": 2,
        },
    )
    assert "valence_worker_ready 1.0" in joined["/metrics"][1]
    moving = asyncio.run(answers(WorkerProbes(metrics, fake_app(3, True, partitions=2))))
    assert moving["/ready"][0] == 503 and moving["/ready"][1]["rebalancing"] is True
    assert "valence_worker_ready 0.0" in moving["/metrics"][1]
