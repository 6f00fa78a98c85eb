"""The soak's pass criteria (stream/bench/soak.py), on made-up samples."""

from __future__ import annotations

from stream.bench.soak import verdict


def _result(rss: list[float], lag: list[float], missing: int = 0) -> dict:
    samples = [{"t_s": 10.0 * i, "rss_mb": value, "lag": lag[i]} for i, value in enumerate(rss)]
    return {"samples": samples, "missing": missing}


def test_growth_is_measured_after_warm_up_only() -> None:
    # 100 s run: warm-up is the first 20 s, so the 300 -> 500 MiB start does not count.
    result = _result([300, 400, 500, 500, 501, 502, 503, 504, 505, 506, 510], [0.0] * 11)
    checks = verdict(result, rate=10.0, seconds=100.0)
    assert checks["rss_after_warmup_mb"] == 500 and checks["rss_at_end_mb"] == 510
    assert checks["rss_growth"] == 0.02 and checks["rss_growth_ok"]
    assert checks["lag_ok"] and checks["lost_ok"]


def test_a_leak_unbounded_lag_or_a_loss_fails() -> None:
    leak = verdict(_result([500, 500, 500, 540], [0.0] * 4), rate=10.0, seconds=30.0)
    assert leak["rss_growth"] == 0.08 and not leak["rss_growth_ok"]
    lag = verdict(_result([500] * 4, [0, 50, 200, 400]), rate=10.0, seconds=30.0)
    assert lag["lag_max"] == 400 and lag["lag_bound"] == 300 and not lag["lag_ok"]
    lost = verdict(_result([500] * 4, [0.0] * 4, missing=3), rate=10.0, seconds=30.0)
    assert not lost["lost_ok"]
