"""Write the configuration and metrics tables of deploy/README.md from the code.

    python -m deploy.gen_config_docs          # rewrite the tables in deploy/README.md
    python -m deploy.gen_config_docs --check  # exit 1 when they are stale (a unit test does too)

The tables sit between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` markers; the rest
of the README is written by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase
from pydantic.fields import FieldInfo

from stream.config import Settings
from stream.metrics import GatewayMetrics, ValenceMetrics

REPO_ROOT = Path(__file__).resolve().parent.parent
README = Path(__file__).resolve().parent / "README.md"
ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))
# Exported names of counters and infos; histograms add _bucket, _sum and _count.
SUFFIX = {"counter": "_total", "info": "_info"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _type(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return " / ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [_type(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
        return " or ".join(parts) + " (optional)"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, Path) and value.is_absolute():
        # Paths inside the checkout are shown relative to it: the table must not depend
        # on where the repository (or the installed package) lives.
        try:
            return f"`{value.relative_to(REPO_ROOT)}` (in the installed package)"
        except ValueError:
            pass
    return f"`{value}`"


def settings_table() -> str:
    rows = [
        "| Environment variable | Setting | Type | Default | Meaning |",
        "|---|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        rows.append(
            f"| `{ENV_PREFIX}{name.upper()}` | `{name}` | {_cell(_type(field.annotation))} "
            f"| {_cell(_default(field))} | {_cell(field.description or '')} |"
        )
    return "\n".join(rows)


def metrics_table() -> str:
    rows = ["| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    # The worker's metrics, then the gateway's (each process serves its own registry).
    for metrics in (
        ValenceMetrics.create(CollectorRegistry()),
        GatewayMetrics.create(CollectorRegistry()),
    ):
        for field in dataclasses.fields(metrics):
            value = getattr(metrics, field.name)
            if isinstance(value, MetricWrapperBase):
                name = value._name + SUFFIX.get(value._type, "")
                labels = ", ".join(f"`{label}`" for label in value._labelnames) or "-"
                meaning = _cell(value._documentation)
                rows.append(f"| `{name}` | {value._type} | {labels} | {meaning} |")
    rows.append(
        "| `valence_process_*` | process | - | CPU seconds, resident and virtual memory, open "
        "file descriptors, start time of the worker or gateway process (Linux). |"
    )
    return "\n".join(rows)


TABLES = {"config-table": settings_table, "metrics-table": metrics_table}


def render(text: str) -> str:
    """`text` with every generated table replaced by its current content."""
    for name, build in TABLES.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise ValueError(f"markers for {name} missing")
        text = pattern.sub(lambda match, build=build: f"{match[1]}{build()}\n{match[2]}", text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README is stale")
    args = parser.parse_args(argv)
    current = README.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print(f"{README} is stale: run python -m deploy.gen_config_docs", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
