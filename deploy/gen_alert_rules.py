"""Keep the alert rules' runbook links and the Prometheus Operator's copy of the rules in step.

    python -m deploy.gen_alert_rules                      # rewrite the PrometheusRule
    python -m deploy.gen_alert_rules --runbook-base URL   # also point every runbook_url at URL
    python -m deploy.gen_alert_rules --check              # exit 1 when the PrometheusRule is stale

`deploy/prometheus/alerts.yml` is the source. Every rule's `runbook_url` is
``<runbook base>#<alert name in lower case>``, an anchor of a `### AlertName` heading in
deploy/README.md. The base is where your team reads that README (your Git host's page of
the file, an internal docs site); `--runbook-base` rewrites it in alerts.yml and in the
expectations of alerts_test.yml, so `promtool test rules` keeps passing.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parent
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
PROMETHEUS_RULE = DEPLOY / "k8s" / "components" / "prometheus-operator" / "prometheusrule.yaml"
RUNBOOK_URL = re.compile(r"^(?P<indent>\s*runbook_url: )(?P<base>[^#\s]+)#(?P<anchor>\S+)$", re.M)
HEADER = """\
# Generated from deploy/prometheus/alerts.yml by `python -m deploy.gen_alert_rules`: edit
# alerts.yml, then run it (a unit test fails when this file is stale).
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL) as literal blocks, as in alerts.yml."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def runbook_bases(text: str) -> set[str]:
    return {match["base"] for match in RUNBOOK_URL.finditer(text)}


def with_runbook_base(text: str, base: str) -> str:
    """`text` (alerts.yml or alerts_test.yml) with every runbook_url's base set to `base`."""
    if not base or "#" in base or any(c.isspace() for c in base):
        raise ValueError(f"not a runbook base (a URL without a #fragment): {base!r}")
    return RUNBOOK_URL.sub(lambda m: f"{m['indent']}{base}#{m['anchor']}", text)


def prometheus_rule(alerts_text: str) -> str:
    """The PrometheusRule resource carrying the groups of alerts.yml."""
    groups = yaml.safe_load(alerts_text)["groups"]
    resource: dict[str, Any] = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "valence", "labels": {"app.kubernetes.io/name": "valence"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runbook-base", help="URL of deploy/README.md as your team reads it")
    parser.add_argument("--check", action="store_true", help="exit 1 if the rule is stale")
    args = parser.parse_args(argv)
    if args.check:
        if PROMETHEUS_RULE.read_text() != prometheus_rule(ALERTS.read_text()):
            print(
                f"{PROMETHEUS_RULE} is stale: run python -m deploy.gen_alert_rules", file=sys.stderr
            )
            return 1
        return 0
    if args.runbook_base:
        for path in (ALERTS, ALERTS_TEST):
            path.write_text(with_runbook_base(path.read_text(), args.runbook_base))
    PROMETHEUS_RULE.write_text(prometheus_rule(ALERTS.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
