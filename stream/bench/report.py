"""Results -> results.json, results.md and two PNG plots in one folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from stream.bench.load_phase import STAGES

LATENCY_PLOT = "latency_vs_load.png"
BATCH_PLOT = "throughput_vs_batch.png"


def write_report(results: dict[str, Any], output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.json").write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    plots = _plots(results, output_dir)
    (output_dir / "results.md").write_text(markdown(results, plots))
    return output_dir


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.1f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _latency(phase: dict[str, Any], kind: str, quantile: str) -> Any:
    return phase.get("latency_ms", {}).get(kind, {}).get(quantile)


def _load_line(load: dict[str, Any] | None, cpus: int | None) -> str:
    """Whether other processes shared the machine while the phases ran."""
    if not load:
        return "Other processes' CPU during the phases was not recorded.  "
    repeated = load["phases_repeated"]
    again = f" Repeated because their load changed: {', '.join(repeated)}." if repeated else ""
    if load["under_load"]:
        return (
            f"**Taken under load**: other processes used up to {load['others_cores_max']} "
            f"cores of {cpus} during the phases (under load: "
            f"{', '.join(load['phases_under_load'])}); absolute figures are low and "
            f"noisy, ratios within one round are the comparable ones.{again}  "
        )
    return (
        f"Quiet machine: other processes used at most {load['others_cores_max']} cores "
        f"during any phase.{again}  "
    )


def markdown(results: dict[str, Any], plots: Sequence[str] = ()) -> str:
    env = results["environment"]
    summary = results["summary"]
    machine = env["machine"]
    lines = [
        f"# Valence benchmark: {env['device_kind'].upper()}",
        "",
        f"Command: `{results['options'].get('command') or 'valence bench'}`  ",
        f"Started {env['started_at']}, took {results['seconds']:.0f} s; git "
        f"{env['git']['commit'][:10]}{' (uncommitted changes)' if env['git']['dirty'] else ''}.",
        "",
        f"Machine: {machine['cpu']}, {machine['cpus_usable']} usable CPUs, "
        f"{machine['memory_gib']} GiB, {machine['platform']}, Python {machine['python']}; "
        f"load average (1/5/15 min) {machine['load_average_at_start']} at start, "
        f"{machine.get('load_average_at_end')} at end.  ",
        _load_line(results.get("machine_load"), machine.get("cpus_usable")),
        f"Device: {env['device']} ({env.get('gpu', 'no GPU')}), {env['dtype']}, "
        f"torch threads {env['torch_threads']}. Model {env['model']['name']} "
        f"{env['model']['version']}. Kafka {env['kafka_version']} (local, same machine).  ",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        "",
        f"Workload: {results['workload']['texts']} texts of the realistic mix per backlog, "
        f"mean {results['workload']['mean_chars']} characters "
        f"(~{results['workload']['mean_tokens_estimated']} tokens), "
        f"batch policy {results['batch_policy']}.",
        "",
        f"## Saturated throughput (median of {len(results['rounds'])} rounds; ratios per round)",
        "",
        *_table(
            [
                "model-only texts/s",
                "pipeline events/s",
                "naive events/s",
                "pipeline / model-only",
                "pipeline / naive",
                "missing",
                "duplicates",
            ],
            [
                [
                    summary["model_only_texts_per_s"],
                    summary["pipeline_texts_per_s"],
                    summary["naive_texts_per_s"],
                    summary["pipeline_over_model_only"],
                    summary["pipeline_over_naive"],
                    summary["outputs_missing"],
                    summary["outputs_duplicated"],
                ]
            ],
        ),
        "",
        "## Targets",
        "",
        *_table(
            ["target", "value", "bound", "met"],
            [
                [
                    t["target"],
                    t["value"],
                    t["bound"],
                    {True: "yes", False: "NO", None: "-"}[t["met"]],
                ]
                for t in results.get("targets", [])
            ],
        ),
        "",
        "## Rounds",
        "",
        *_table(
            [
                "round",
                "model-only texts/s",
                "pipeline events/s",
                "mean batch",
                "naive events/s",
                "pipeline / model-only",
                "pipeline / naive",
            ],
            [
                [
                    r["round"],
                    r["model_only"]["texts_per_s"],
                    r["pipeline"].get("throughput"),
                    r["pipeline"].get("mean_batch_events"),
                    r.get("naive", {}).get("throughput"),
                    r.get("pipeline_over_model_only"),
                    r.get("pipeline_over_naive"),
                ]
                for r in results["rounds"]
            ],
        ),
    ]
    if results.get("loads"):
        lines += [
            "",
            "## Offered loads (Poisson arrivals; latency from the output events, ms)",
            "",
            *_table(
                [
                    "load",
                    "offered events/s",
                    "sent",
                    "scored",
                    "mean batch",
                    "e2e p50",
                    "e2e p95",
                    "e2e p99",
                    "scored p99",
                ],
                [
                    [
                        f"{load['fraction']:.0%}",
                        load.get("offered_rate"),
                        load["sent"],
                        load["scored"],
                        load.get("mean_batch_events"),
                        _latency(load, "end_to_end", "p50"),
                        _latency(load, "end_to_end", "p95"),
                        _latency(load, "end_to_end", "p99"),
                        _latency(load, "scored", "p99"),
                    ]
                    for load in results["loads"]
                ],
            ),
        ]
        lines += _by_size_md(results["loads"])
        lines += _stages_md(results["loads"])
    memory = results.get("memory_mb", {})
    if memory:
        lines += [
            "",
            "## Memory (MiB)",
            "",
            *_table(
                ["process", "RSS at end", "peak RSS"],
                [[name, m.get("rss_mb"), m.get("peak_rss_mb")] for name, m in memory.items()],
            ),
        ]
    lines += _profile_md(results.get("worker_profile"))
    lines += _studies_md(results)
    lines += ["", *[f"![{name}]({name})" for name in plots]]
    return "\n".join(lines) + "\n"


def _by_size_md(loads: Sequence[dict[str, Any]]) -> list[str]:
    sizes = ["sentence", "paragraph", "page", "document"]
    rows = []
    for load in loads:
        split = load.get("end_to_end_by_size") or {}
        rows.append(
            [f"{load['fraction']:.0%}"]
            + [
                f"{split[size]['p50']:,.0f} / {split[size]['p99']:,.0f} ({split[size]['events']})"
                if size in split
                else "-"
                for size in sizes
            ]
        )
    if not any(load.get("end_to_end_by_size") for load in loads):
        return []
    return [
        "",
        "End-to-end p50 / p99 ms (events) by text size: sentence = 1 sentence, paragraph = "
        "2-6, page = 7-20, document = more.",
        "",
        *_table(["load", *sizes], rows),
    ]


def _stages_md(loads: Sequence[dict[str, Any]]) -> list[str]:
    rows = []
    for load in loads:
        for group, stage in (load.get("stages_ms") or {}).items():
            rows.append(
                [f"{load['fraction']:.0%}", f"{group} ({stage['events']})"]
                + [f"{stage[name]:,.0f}" for name in STAGES]
            )
    if not rows:
        return []
    return [
        "",
        "Where the time went, median ms per stage: intake = produced to picked up by the "
        "consumer; queued = picked up to its model call; inference = the call; publish = "
        "scored to read back from the output topic.",
        "",
        *_table(["load", "events", *STAGES], rows),
    ]


def _profile_md(profile: dict[str, Any] | None, top: int = 8) -> list[str]:
    if not profile or not profile.get("samples"):
        return []
    shares = ", ".join(f"{k} {v:.0%}" for k, v in profile["share_by_thread"].items())
    lines = [
        "",
        "## Where the saturated worker's CPU goes (py-spy, busy samples)",
        "",
        f"{profile['samples']} samples; by thread: {shares}. Innermost Python frames (self "
        "time), as a share of their thread's samples (collapsed stacks in "
        "worker_profile.collapsed.txt):",
    ]
    for kind, functions in profile["top_self_by_thread"].items():
        listed = ", ".join(f"{f['function']} {f['share_of_thread']:.0%}" for f in functions[:top])
        lines += ["", f"- {kind}: {listed}"]
    return lines


def _studies_md(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if sweep := results.get("batch_sweep"):
        lines += [
            "",
            "## Model-only throughput against max batch events (same token cap)",
            "",
            *_table(
                ["max events", "batches", "texts/s", "tokens/s"],
                [
                    [s["max_events"], s["batches"], s["texts_per_s"], s["tokens_per_s"]]
                    for s in sweep
                ],
            ),
        ]
    if caps := results.get("token_cap_sweep"):
        lines += [
            "",
            "## Model-only throughput against max batch tokens",
            "",
            *_table(
                ["max tokens", "batches", "texts/s", "tokens/s"],
                [
                    [s["max_tokens"], s["batches"], s["texts_per_s"], s["tokens_per_s"]]
                    for s in caps
                ],
            ),
        ]
    if sort := results.get("length_sorting"):
        lines += [
            "",
            f"Length-sorted sub-batches: {sort['sorted_texts_per_s']} texts/s vs "
            f"{sort['unsorted_texts_per_s']} in input order (x{sort['gain']}).",
        ]
    if threads := results.get("torch_threads"):
        lines += [
            "",
            "Torch threads (model only): "
            + ", ".join(f"{t['threads']}: {t['texts_per_s']} texts/s" for t in threads)
            + ".",
        ]
    if tokens := results.get("token_counting"):
        lines += [
            "",
            f"Token counting per event on the event loop: exact "
            f"{tokens['exact_ms_per_event']} ms, estimate {tokens['estimate_ms_per_event']}"
            f" ms (estimate/exact tokens {tokens['estimate_over_exact_tokens']}).",
        ]
    if compared := results.get("backends"):
        from stream.bench.backends import markdown as backends_markdown

        lines += ["", "## CPU backends: validation accuracy and model-only speed", ""]
        lines += backends_markdown(compared).rstrip("\n").splitlines()
    if (replay := results.get("cache_replay")) and replay.get("available"):
        same = replay["cached_vs_uncached"]
        lines += [
            "",
            "## Segment cache on the editing-session replay (model only)",
            "",
            *_table(
                [
                    "events",
                    "sessions",
                    "hit rate",
                    "texts/s off",
                    "texts/s on",
                    "gain",
                    "label agreement",
                    "max prob diff",
                ],
                [
                    [
                        replay["events"],
                        replay["sessions"],
                        replay["hit_rate"],
                        replay["texts_per_s_off"],
                        replay["texts_per_s_on"],
                        replay["gain"],
                        min(same["sentiment_label_agreement"], same["emotion_label_agreement"]),
                        same["max_prob_diff"],
                    ]
                ],
            ),
        ]
    return lines


def _plots(results: dict[str, Any], output_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    written = []
    title = f"{results['environment']['device']} {results['environment']['dtype']}"
    loads = [load for load in results.get("loads", []) if load.get("latency_ms")]
    if loads:
        fig, ax = plt.subplots(figsize=(6, 4))
        x = [load["fraction"] * 100 for load in loads]
        for quantile in ("p50", "p95", "p99"):
            ax.plot(
                x,
                [_latency(load, "end_to_end", quantile) for load in loads],
                marker="o",
                label=f"end-to-end {quantile}",
            )
        bound = 700 if results["environment"]["device_kind"] == "cpu" else 250
        ax.axhline(bound, color="grey", linestyle="--", label=f"{bound} ms target")
        ax.set(
            xlabel="offered load (% of saturated pipeline throughput)",
            ylabel="latency (ms)",
            title=f"Latency against offered load ({title})",
        )
        ax.legend()
        fig.tight_layout()
        fig.savefig(output_dir / LATENCY_PLOT, dpi=110)
        plt.close(fig)
        written.append(LATENCY_PLOT)
    panels = [
        (key, field, label)
        for key, field, label in (
            ("batch_sweep", "max_events", "max events per batch (token cap as configured)"),
            ("token_cap_sweep", "max_tokens", "max tokens per batch (event cap as configured)"),
        )
        if results.get(key)
    ]
    if panels:
        fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
        for ax, (key, field, label) in zip(axes[0], panels, strict=True):
            sweep = results[key]
            ax.plot(
                [s[field] for s in sweep],
                [s["texts_per_s"] for s in sweep],
                marker="o",
                label=f"model only, {sweep[0]['texts']} texts of the mix",
            )
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.set(xlabel=label, ylabel="texts/s", ylim=(0, None))
            ax.legend(fontsize="small")
        fig.suptitle(f"Throughput against batch policy ({title})")
        fig.tight_layout()
        fig.savefig(output_dir / BATCH_PLOT, dpi=110)
        plt.close(fig)
        written.append(BATCH_PLOT)
    return written
