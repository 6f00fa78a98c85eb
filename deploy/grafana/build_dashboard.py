"""Write deploy/grafana/valence-dashboard.json, the Valence dashboard, from this description.

    python -m deploy.grafana.build_dashboard          # rewrite the JSON
    python -m deploy.grafana.build_dashboard --check  # exit 1 when it is stale (a test does too)

Rules the panels follow (tests/unit/test_deploy_files.py checks them): one unit per panel,
so one per axis; every stat panel has thresholds that mean something, or none at all; the
threshold values are the ones the alerts, the ScaledObject and the Deployment use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DASHBOARD = Path(__file__).resolve().parent / "valence-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SELECT = 'job="valence", instance=~"$instance"'
NOT_ASSIGNOR = 'topic!~".*__assignor-__leader"'  # faust's internal leader topic, never any lag

# Threshold values, each the one a file elsewhere in deploy/ uses (a test compares them).
LATENCY_OBJECTIVE_S = 0.7  # alerts.yml: ValenceEndToEndLatencyHigh
LAG_ALERT_MESSAGES = 1000  # alerts.yml: ValenceConsumerLagGrowing
KEDA_LAG_THRESHOLD = 200  # k8s/base/keda-scaledobject.yaml: lagThreshold per worker
KEDA_MAX_REPLICAS = 12  # k8s/base/keda-scaledobject.yaml: maxReplicaCount
CPU_LIMIT_CORES = 2.5  # k8s/base/deployment.yaml: resources.limits.cpu


def steps(*pairs: tuple[str, float | None]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in pairs]}


def target(expr: str, legend: str = "", ref: str = "A", **extra: Any) -> dict[str, Any]:
    return {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend, **extra}


def quantiles(metric: str, qs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> list[dict[str, Any]]:
    return [
        target(
            f"histogram_quantile({q}, sum by (le) "
            f"(rate({metric}_bucket{{{SELECT}}}[$__rate_interval])))",
            f"p{round(q * 100)}",
            ref=chr(ord("A") + i),
        )
        for i, q in enumerate(qs)
    ]


class Layout:
    """Panels left to right, rows top to bottom, on Grafana's 24-column grid."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.row_height = 0

    def _place(self, width: int, height: int) -> dict[str, int]:
        if self.x + width > 24:
            self.x, self.y = 0, self.y + self.row_height
            self.row_height = 0
        position = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.row_height = max(self.row_height, height)
        return position

    def _add(self, panel: dict[str, Any], width: int, height: int) -> None:
        panel = {"id": len(self.panels) + 1, **panel, "gridPos": self._place(width, height)}
        self.panels.append(panel)

    def row(self, title: str) -> None:
        self.x, self.y = 0, self.y + self.row_height
        self.row_height = 0
        self._add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)

    def stat(
        self,
        title: str,
        description: str,
        expr: str,
        unit: str,
        thresholds: dict[str, Any] | None,
    ) -> None:
        """A single number; coloured by `thresholds`, or plain when None."""
        color = {"mode": "thresholds"} if thresholds else {"mode": "fixed", "fixedColor": "text"}
        defaults: dict[str, Any] = {"unit": unit, "color": color}
        defaults["thresholds"] = thresholds or steps(("text", None))
        self._add(
            {
                "type": "stat",
                "title": title,
                "description": description,
                "datasource": DATASOURCE,
                "targets": [target(expr, instant=True, range=False)],
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": {
                    "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "background" if thresholds else "none",
                    "graphMode": "area",
                    "textMode": "value",
                },
            },
            4,
            4,
        )

    def series(
        self,
        title: str,
        description: str,
        targets: list[dict[str, Any]],
        unit: str,
        width: int,
        axis_label: str = "",
        thresholds: dict[str, Any] | None = None,
        draw: str = "line",
        max_value: float | None = None,
    ) -> None:
        """A time series panel: one unit, hence one y axis; `thresholds` drawn as lines."""
        custom: dict[str, Any] = {
            "drawStyle": draw,
            "fillOpacity": 80 if draw == "bars" else 10,
            "axisLabel": axis_label,
            "thresholdsStyle": {"mode": "dashed" if thresholds else "off"},
        }
        defaults: dict[str, Any] = {
            "unit": unit,
            "min": 0,
            "custom": custom,
            "color": {"mode": "palette-classic"},
            "thresholds": thresholds or steps(("green", None)),
        }
        if max_value is not None:
            defaults["max"] = max_value
        self._add(
            {
                "type": "timeseries",
                "title": title,
                "description": description,
                "datasource": DATASOURCE,
                "targets": targets,
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": {
                    "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"},
                },
            },
            width,
            8,
        )

    def table(self, title: str, description: str, expr: str, columns: list[str]) -> None:
        shown = {name: i for i, name in enumerate(columns)}
        self._add(
            {
                "type": "table",
                "title": title,
                "description": description,
                "datasource": DATASOURCE,
                "targets": [target(expr, format="table", instant=True, range=False)],
                "fieldConfig": {"defaults": {"unit": "string"}, "overrides": []},
                "options": {"showHeader": True, "cellHeight": "sm"},
                "transformations": [
                    {
                        "id": "organize",
                        "options": {
                            "excludeByName": {
                                name: True for name in ("Time", "Value", "__name__", "job")
                            },
                            "indexByName": shown,
                        },
                    }
                ],
            },
            8,
            8,
        )


def rate(metric: str, by: str = "") -> str:
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping}(rate({metric}{{{SELECT}}}[$__rate_interval]))"


def build() -> dict[str, Any]:
    board = Layout()
    board.row("Overview")
    board.stat(
        "Workers ready",
        "Workers whose /ready answers 200 (model warm, group joined, not rebalancing). "
        "Red at 0: nothing is scored.",
        f"sum(valence_worker_ready{{{SELECT}}})",
        "none",
        steps(("red", None), ("green", 1)),
    )
    board.stat(
        "Workers up",
        "Workers Prometheus scrapes. Red at 0: none is running or none is found.",
        f"sum(up{{{SELECT}}})",
        "none",
        steps(("red", None), ("green", 1)),
    )
    board.stat(
        "Events in /s",
        "Input events received per second (no good or bad value: it is the load).",
        rate("valence_events_in_total"),
        "ops",
        None,
    )
    board.stat(
        "Scored out /s",
        "Scored events acknowledged by the broker per second.",
        rate("valence_events_out_total"),
        "ops",
        None,
    )
    board.stat(
        "Consumer lag",
        f"Messages not yet committed. Orange from {LAG_ALERT_MESSAGES} (where the "
        "ValenceConsumerLagGrowing alert starts to look), red from "
        f"{KEDA_MAX_REPLICAS * KEDA_LAG_THRESHOLD} (KEDA's lagThreshold x maxReplicaCount: "
        "the autoscaler is at its maximum).",
        f"sum(valence_consumer_lag_messages{{{SELECT}, {NOT_ASSIGNOR}}})",
        "none",
        steps(
            ("green", None),
            ("orange", LAG_ALERT_MESSAGES),
            ("red", KEDA_MAX_REPLICAS * KEDA_LAG_THRESHOLD),
        ),
    )
    board.stat(
        "p99 end to end",
        f"Red above the {LATENCY_OBJECTIVE_S} s objective (ValenceEndToEndLatencyHigh).",
        quantiles("valence_end_to_end_latency_seconds", (0.99,))[0]["expr"],
        "s",
        steps(("green", None), ("red", LATENCY_OBJECTIVE_S)),
    )

    board.row("Workers")
    board.series(
        "Workers up and ready",
        "Up: scraped. Ready: scoring. A gap between the lines is workers starting, "
        "rebalancing or stuck (ValenceWorkerNotReady after 10 minutes).",
        [
            target(f"sum(up{{{SELECT}}})", "up"),
            target(f"sum(valence_worker_ready{{{SELECT}}})", "ready", ref="B"),
        ],
        "none",
        10,
        axis_label="workers",
    )
    board.series(
        "Restarts per worker",
        "Process restarts (a new valence_process_start_time_seconds); 3 in 30 minutes is "
        "ValenceWorkerRestarting.",
        [
            target(
                "sum by (instance) (changes(valence_process_start_time_seconds"
                f"{{{SELECT}}}[$__rate_interval]))",
                "{{instance}}",
            )
        ],
        "none",
        6,
        axis_label="restarts",
        draw="bars",
    )
    board.table(
        "Model and version per worker",
        "The model each worker scores with; two versions side by side during a rollout.",
        f"valence_model_info{{{SELECT}}}",
        ["instance", "name", "version", "backbone", "device", "dtype"],
    )

    board.row("Throughput")
    board.series(
        "Events in, out and dead-lettered /s",
        "Scored out should follow events in; dead letters stay near 0.",
        [
            target(rate("valence_events_in_total"), "in"),
            target(rate("valence_events_out_total"), "scored out", ref="B"),
            target(rate("valence_events_dead_lettered_total"), "dead-lettered", ref="C"),
        ],
        "ops",
        12,
    )
    board.series(
        "Dead letters by reason /s",
        "Which reason rose when ValenceDeadLetterRateHigh fires.",
        [target(rate("valence_events_dead_lettered_total", "reason"), "{{reason}}")],
        "ops",
        12,
    )

    board.row("Latency")
    board.series(
        "End to end (produced_at to scored event acknowledged)",
        f"Objective: p99 under {LATENCY_OBJECTIVE_S} s (dashed line).",
        quantiles("valence_end_to_end_latency_seconds"),
        "s",
        6,
        thresholds=steps(("green", None), ("red", LATENCY_OBJECTIVE_S)),
    )
    board.series(
        "Model call",
        "One batched model call, scoring and suggestions together.",
        quantiles("valence_inference_duration_seconds"),
        "s",
        6,
    )
    board.series(
        "Suggestions (part of the model call)",
        "The suggestion/attribution step of batches that asked for suggestions; empty "
        "when VALENCE_SUGGESTIONS is off or no event asks.",
        quantiles("valence_suggestion_duration_seconds"),
        "s",
        6,
    )
    board.series(
        "Queue wait (decoded to model call)",
        "High while low model-call times: the workers are saturated (scale out).",
        quantiles("valence_queue_duration_seconds", (0.5, 0.99)),
        "s",
        6,
    )

    board.row("Batching")
    mean_events = (
        f"{rate('valence_batch_size_events_sum')} / {rate('valence_batch_size_events_count')}"
    )
    mean_tokens = (
        f"{rate('valence_batch_size_tokens_sum')} / {rate('valence_batch_size_tokens_count')}"
    )
    board.series(
        "Batch size (events per model call)",
        "Mean and p95 against the configured limit.",
        [
            target(mean_events, "mean"),
            target(
                "histogram_quantile(0.95, sum by (le) "
                f"(rate(valence_batch_size_events_bucket{{{SELECT}}}[$__rate_interval])))",
                "p95",
                ref="B",
            ),
            target(f"max(valence_batch_max_size_events{{{SELECT}}})", "limit", ref="C"),
        ],
        "none",
        12,
        axis_label="events",
    )
    board.series(
        "Batch fill (mean size / configured limit)",
        "Near 100% at peak: batches are full, raise the limits (GPU) or scale out (CPU).",
        [
            target(f"({mean_events}) / max(valence_batch_max_size_events{{{SELECT}}})", "events"),
            target(
                f"({mean_tokens}) / max(valence_batch_max_size_tokens{{{SELECT}}})",
                "tokens",
                ref="B",
            ),
        ],
        "percentunit",
        12,
        max_value=1,
    )

    board.row("Kafka consumer")
    board.series(
        "Consumer lag per partition",
        f"KEDA adds a worker per {KEDA_LAG_THRESHOLD} messages of total lag (dashed line: "
        "one worker's share).",
        [
            target(
                f"sum by (topic, partition) (valence_consumer_lag_messages{{{SELECT}, "
                f"{NOT_ASSIGNOR}}})",
                "{{topic}}[{{partition}}]",
            )
        ],
        "none",
        12,
        axis_label="messages",
        thresholds=steps(("green", None), ("orange", KEDA_LAG_THRESHOLD)),
    )
    board.series(
        "Assigned partitions per worker",
        "0 for a worker beyond the partition count (it waits in the group).",
        [
            target(
                f"sum by (instance) (valence_consumer_assigned_partitions{{{SELECT}, "
                f"{NOT_ASSIGNOR}}})",
                "{{instance}}",
            )
        ],
        "none",
        4,
        axis_label="partitions",
    )
    board.series(
        "Rebalances per worker",
        "More than 5 in 15 minutes is ValenceRebalanceStorm.",
        [
            target(
                "sum by (instance) (increase(valence_consumer_rebalances_total"
                f"{{{SELECT}}}[$__rate_interval]))",
                "{{instance}}",
            )
        ],
        "none",
        4,
        axis_label="rebalances",
        draw="bars",
    )
    board.series(
        "Commit latency p99",
        "One offset commit; seconds here mean a slow or overloaded broker.",
        quantiles("valence_consumer_commit_latency_seconds", (0.99,)),
        "s",
        4,
    )

    board.row("Resources")
    board.series(
        "CPU per worker",
        f"Cores used; the dashed line is the Deployment's limit ({CPU_LIMIT_CORES}: torch "
        "threads + 0.5). Flat at the line: throttled.",
        [
            target(
                "sum by (instance) (rate(valence_process_cpu_seconds_total"
                f"{{{SELECT}}}[$__rate_interval]))",
                "{{instance}}",
            )
        ],
        "none",
        6,
        axis_label="cores",
        thresholds=steps(("green", None), ("red", CPU_LIMIT_CORES)),
    )
    board.series(
        "Resident memory per worker",
        "Bounded by VALENCE_MAX_IN_FLIGHT_EVENTS and the segment cache.",
        [
            target(
                f"sum by (instance) (valence_process_resident_memory_bytes{{{SELECT}}})",
                "{{instance}}",
            )
        ],
        "bytes",
        6,
    )
    board.series(
        "Events in flight per worker",
        "Received but not yet acknowledged downstream; at VALENCE_MAX_IN_FLIGHT_EVENTS the "
        "worker stops fetching.",
        [
            target(
                f"sum by (instance) (valence_events_in_flight{{{SELECT}}})",
                "{{instance}}",
            )
        ],
        "none",
        4,
        axis_label="events",
    )
    board.series(
        "GPU utilisation",
        "Busy share of each GPU (needs nvidia-ml-py: the CUDA image).",
        [
            target(
                f"max by (instance, device) (valence_gpu_utilization_ratio{{{SELECT}}})",
                "{{instance}} {{device}}",
            )
        ],
        "percentunit",
        4,
        max_value=1,
    )
    board.series(
        "GPU memory",
        "Held by the worker's tensors.",
        [
            target(
                f"max by (instance, device) (valence_gpu_memory_allocated_bytes{{{SELECT}}})",
                "{{instance}} {{device}}",
            )
        ],
        "bytes",
        4,
    )
    return {
        "uid": "valence-overview",
        "title": "Valence",
        "description": "Valence stream scoring: workers, throughput, dead letters, latency, "
        "suggestions, batching, Kafka lag, resources, model. Built by "
        "deploy/grafana/build_dashboard.py.",
        "tags": ["valence", "kafka"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 2,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                    "options": [],
                },
                {
                    "name": "instance",
                    "label": "Worker",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {
                        "query": 'label_values(up{job="valence"}, instance)',
                        "refId": "instance",
                    },
                    "definition": 'label_values(up{job="valence"}, instance)',
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                    "refresh": 2,
                    "sort": 1,
                    "hide": 0,
                    "regex": "",
                    "options": [],
                },
            ]
        },
        "panels": board.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the JSON is stale")
    args = parser.parse_args(argv)
    if args.check:
        if DASHBOARD.read_text() != render():
            print(f"{DASHBOARD} is stale: run python -m deploy.grafana.build_dashboard")
            return 1
        return 0
    DASHBOARD.write_text(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
