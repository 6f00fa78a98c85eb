"""The issues' targets (5, 14), checked against one run's results (ratios within the run)."""

from __future__ import annotations

from typing import Any

# (name, where in the results, comparison, bound) per device kind.
TARGETS: dict[str, list[tuple[str, str, str, float]]] = {
    "cpu": [
        ("saturated pipeline / model-only", "pipeline_over_model_only", ">=", 0.9),
        ("saturated pipeline / naive consumer", "pipeline_over_naive", ">=", 1.5),
        ("p99 end-to-end at 70% load, one-sentence events (ms)", "sentence_p99_at_70", "<=", 500.0),
        ("p99 end-to-end at 70% load, paragraph events (ms)", "paragraph_p99_at_70", "<=", 500.0),
        ("p99 end-to-end at 70% load, all events (ms)", "p99_at_70", "<=", 1500.0),
        ("worker peak RSS (MiB)", "worker_peak_rss_mb", "<=", 1536.0),
    ],
    "cuda": [
        ("saturated pipeline (events/s)", "pipeline_texts_per_s", ">=", 10_000.0),
        ("saturated pipeline / naive consumer", "pipeline_over_naive", ">=", 20.0),
        ("p99 end-to-end at 70% load (ms)", "p99_at_70", "<=", 250.0),
    ],
}


def _values(results: dict[str, Any]) -> dict[str, float | None]:
    summary = results.get("summary", {})
    at_70 = [load for load in results.get("loads", []) if abs(load["fraction"] - 0.7) < 1e-9]
    p99 = at_70[0].get("latency_ms", {}).get("end_to_end", {}).get("p99") if at_70 else None
    sizes = at_70[0].get("end_to_end_by_size", {}) if at_70 else {}
    worker = results.get("memory_mb", {}).get("worker", {})
    return {
        **summary,
        "p99_at_70": p99,
        "sentence_p99_at_70": sizes.get("sentence", {}).get("p99"),
        "paragraph_p99_at_70": sizes.get("paragraph", {}).get("p99"),
        "worker_peak_rss_mb": worker.get("peak_rss_mb"),
    }


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    values = _values(results)
    kind = results.get("environment", {}).get("device_kind", "cpu")
    out = []
    for name, key, op, bound in TARGETS.get(kind, []):
        value = values.get(key)
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        out.append({"target": name, "value": value, "bound": f"{op} {bound:g}", "met": met})
    return out
