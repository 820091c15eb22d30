"""The Helm chart: lint, schema-valid manifests, secure defaults, credentials only from the Secret,
sharded mode, settings the exporter really reads, the web config (TLS and basic auth) the exporter
accepts, and the rules and dashboards it ships being the single sources' copies."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import trustme
import yaml

from modelarts_exporter.config.load import load
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.target_fields import ENV_PREFIX, SECRET_FIELDS
from modelarts_exporter.config.targets import resolve
from modelarts_exporter.http.webconfig import load as load_web_config
from support.deploy import (
    CHART,
    CI_VALUES,
    DASHBOARDS,
    PLAIN_RULES,
    REQUIRED_VALUES,
    helm_template,
    load_sync_script,
    only,
    operator_schema,
    run,
    tool,
)

# The defaults and every ci/<name>-values.yaml, by <name>.
VALUE_SETS = {
    "defaults": ("--values", str(REQUIRED_VALUES)),
    **{
        path.name.removesuffix("-values.yaml"): ("--values", str(path))
        for path in sorted(CI_VALUES.parent.glob("*-values.yaml"))
    },
}
WEB_CONFIG_SETS = sorted(name for name in VALUE_SETS if name.startswith("webconfig-"))
MIN_KUBERNETES = "1.28.0"  # Chart.yaml kubeVersion
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Each credential setting and the default key it has in the Secret (secret.keys.*).
CREDENTIAL_KEYS = {
    "MODELARTS_EXPORTER_AUTH_TOKEN": "auth-token",
    "MODELARTS_EXPORTER_ACCESS_KEY": "access-key",
    "MODELARTS_EXPORTER_SECRET_KEY": "secret-key",
    "MODELARTS_EXPORTER_SECURITY_TOKEN": "security-token",
    "MODELARTS_EXPORTER_USERNAME": "username",
    "MODELARTS_EXPORTER_PASSWORD": "password",
    "MODELARTS_EXPORTER_DOMAIN_NAME": "domain-name",
}


@cache
def _rendered(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(helm_template(*VALUE_SETS[name]))


def rendered(name: str) -> list[dict[str, Any]]:
    """The chart rendered with a named value set (shared: do not modify)."""
    return list(_rendered(name))


def workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [doc for doc in docs if doc["kind"] in {"Deployment", "StatefulSet"}]
    return found


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = workload(docs)["spec"]["template"]["spec"]["containers"]
    return found


def container_env(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {env["name"]: env for env in container(docs)["env"]}


def helm_template_refused(*args: str, required: bool = True) -> str:
    """What `helm template` says when it refuses to render (args: --set …), on top of
    :data:`REQUIRED_VALUES` unless ``required`` is false."""
    base = ("--values", str(REQUIRED_VALUES)) if required else ()
    result = subprocess.run(
        [tool("helm"), "template", "x", str(CHART), *base, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0, "helm template rendered"
    return result.stderr


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_helm_lint_strict(values: str) -> None:
    run([tool("helm"), "lint", "--strict", str(CHART), *VALUE_SETS[values]])


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_manifests_validate_against_kubernetes_schemas(values: str) -> None:
    versions = (MIN_KUBERNETES, kubernetes_validate.utils.latest_version())
    checked = 0
    for doc in rendered(values):
        if doc["kind"] in OPERATOR_KINDS:
            continue
        for version in versions:
            kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("values", ["ci", *WEB_CONFIG_SETS])
def test_operator_resources_validate_against_crd_schemas(values: str) -> None:
    docs = [doc for doc in rendered(values) if doc["kind"] in OPERATOR_KINDS]
    assert docs
    for doc in docs:
        errors = sorted(
            jsonschema.Draft202012Validator(operator_schema(doc["kind"])).iter_errors(doc),
            key=str,
        )
        assert errors == [], f"{doc['kind']}: {[error.message for error in errors]}"


def test_operator_schema_rejects_an_unknown_field() -> None:
    monitor = yaml.safe_load(yaml.safe_dump(only(rendered("ci"), "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    validator = jsonschema.Draft202012Validator(operator_schema("ServiceMonitor"))
    assert any("intervall" in error.message for error in validator.iter_errors(monitor))


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_pods_run_locked_down(values: str) -> None:
    pod = workload(rendered(values))["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]
    assert container["ports"] == [
        {"name": "http-metrics", "containerPort": 9878, "protocol": "TCP"}
    ]
    sa = only(rendered(values), "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False


def test_defaults_render_only_the_exporter() -> None:
    kinds = sorted(doc["kind"] for doc in rendered("defaults"))
    assert kinds == ["Deployment", "Service", "ServiceAccount"]
    env = container_env(rendered("defaults"))
    # Unset values leave the exporter's defaults: no variable for them.
    assert {name: var["value"] for name, var in env.items() if "value" in var} == {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": "0.0.0.0:9878",
        "MODELARTS_EXPORTER_LOG_FORMAT": "json",
        "MODELARTS_EXPORTER_CLOUD": "otc",
        "MODELARTS_EXPORTER_REGION": "eu-de",
        "MODELARTS_EXPORTER_PROJECT_ID": "0123456789abcdef0123456789abcdef",
    }


def test_the_defaults_alone_are_refused_naming_the_values_to_set() -> None:
    """Without a project, endpoints and credentials the pod would only crash-loop."""
    refusal = helm_template_refused(required=False)
    assert "the exporter cannot poll without these values" in refusal
    for value in ("config.projectId", "config.cloud and config.region", "secret.existingSecret"):
        assert value in refusal
    assert "Traceback" not in refusal and "goroutine" not in refusal


REQUIRED_NAMES = {
    "config.projectId": "config.projectId (or config.projectName, or config.targets)",
    "config.cloud": "config.cloud and config.region (or config.endpoint)",
    "secret.existingSecret": "credentials: secret.existingSecret, or secret.accessKey",
}


@pytest.mark.parametrize("unset", sorted(REQUIRED_NAMES))
def test_each_missing_required_value_is_named_alone(unset: str) -> None:
    args = ["--set", f"{unset}="]
    if unset == "config.cloud":
        args += ["--set", "config.region="]
    refusal = helm_template_refused(*args)
    for value, named in REQUIRED_NAMES.items():
        assert (named in refusal) == (value == unset), refusal


def test_replicas_without_sharding_are_refused() -> None:
    refusal = helm_template_refused("--set", "replicaCount=3")
    assert "replicaCount 3 without sharding would poll every target 3 times" in refusal
    assert "set sharding.enabled=true and sharding.replicas=3" in refusal


def test_replicas_as_shards_render() -> None:
    docs = helm_template(
        "--set", "replicaCount=3", "--set", "sharding.enabled=true", "--set", "sharding.replicas=3"
    )  # fmt: skip
    assert only(docs, "StatefulSet")["spec"]["replicas"] == 3


def test_connection_values_become_variables() -> None:
    env = container_env(
        helm_template(
            "--set", "config.cloud=huaweicloud",
            "--set", "config.region=ap-southeast-3",
            "--set", "config.iamEndpoint=https://iam.example.com/v3",
            "--set", "config.projectName=ap-southeast-3_ml",
        )
    )  # fmt: skip
    assert {name: var["value"] for name, var in env.items() if "value" in var} == {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": "0.0.0.0:9878",
        "MODELARTS_EXPORTER_LOG_FORMAT": "json",
        "MODELARTS_EXPORTER_PROJECT_ID": "0123456789abcdef0123456789abcdef",
        "MODELARTS_EXPORTER_CLOUD": "huaweicloud",
        "MODELARTS_EXPORTER_REGION": "ap-southeast-3",
        "MODELARTS_EXPORTER_IAM_ENDPOINT": "https://iam.example.com/v3",
        "MODELARTS_EXPORTER_PROJECT_NAME": "ap-southeast-3_ml",
    }


@pytest.mark.parametrize("given", ["config.cloud=otc", "config.region=eu-de"])
def test_cloud_and_region_go_together(given: str) -> None:
    refusal = helm_template_refused("--set", given, required=False)
    assert "String length must be greater than or equal to 1" in refusal


def test_ci_values_turn_everything_on() -> None:
    kinds = sorted(doc["kind"] for doc in rendered("ci"))
    assert kinds == sorted(
        [
            "ConfigMap",  # targets
            "ConfigMap",  # dashboards
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Secret",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
            "StatefulSet",
        ]
    )


def test_sharded_mode_gives_each_pod_its_shard() -> None:
    docs = helm_template("--set", "sharding.enabled=true", "--set", "sharding.replicas=4")
    assert "Deployment" not in {doc["kind"] for doc in docs}
    statefulset = only(docs, "StatefulSet")
    service = only(docs, "Service")
    assert statefulset["spec"]["replicas"] == 4
    assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
    assert service["spec"]["clusterIP"] == "None"
    env = container_env(docs)
    assert env["MODELARTS_EXPORTER_SHARD"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
    }
    assert env["MODELARTS_EXPORTER_TOTAL_SHARDS"]["value"] == "4"


def test_service_keeps_unready_pods_scrapable() -> None:
    for values in VALUE_SETS:
        assert only(rendered(values), "Service")["spec"]["publishNotReadyAddresses"] is True


def _every_secret_value() -> list[dict[str, Any]]:
    """Single-target rendering with every `secret.*` value set (more kinds than the exporter takes
    at once: only the rendering is looked at)."""
    return helm_template(
        "--set", "secret.existingSecret=",
        "--set", "secret.authToken=token-value",
        "--set", "secret.accessKey=ak-value",
        "--set", "secret.secretKey=sk-value",
        "--set", "secret.securityToken=security-token-value",
        "--set", "secret.username=username-value",
        "--set", "secret.password=password-value",
        "--set", "secret.domainName=domain-value",
        "--set", "secret.extraData.team-a-sk=team-a-sk-value",
    )  # fmt: skip


@pytest.mark.parametrize("values", ["ci", "every secret value"])
def test_credentials_come_from_the_secret_only(values: str) -> None:
    docs = rendered("ci") if values == "ci" else _every_secret_value()
    secret = only(docs, "Secret")
    env = container_env(docs)
    for variable, key in CREDENTIAL_KEYS.items():
        assert env[variable] == {
            "name": variable,
            "valueFrom": {
                "secretKeyRef": {"name": secret["metadata"]["name"], "key": key, "optional": True}
            },
        }
    # No value of the Secret anywhere else: not in a ConfigMap, an env `value`, an annotation…
    for doc in docs:
        if doc["kind"] != "Secret":
            text = yaml.safe_dump(doc)
            assert [value for value in secret["stringData"].values() if value in text] == []


def test_password_login_keys_follow_secret_keys() -> None:
    docs = helm_template(
        "--set", "secret.existingSecret=",
        "--set", "secret.username=monitoring",
        "--set", "secret.password=hunter2-but-longer",
        "--set", "secret.domainName=OTC-EU-DE-00000000001000000001",
        "--set", "secret.keys.password=iam-password",
    )  # fmt: skip
    assert only(docs, "Secret")["stringData"] == {
        "username": "monitoring",
        "iam-password": "hunter2-but-longer",
        "domain-name": "OTC-EU-DE-00000000001000000001",
    }
    reference = container_env(docs)["MODELARTS_EXPORTER_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert reference["key"] == "iam-password"


def test_existing_secret_is_referenced_not_created() -> None:
    docs = helm_template("--set", "secret.existingSecret=modelarts-credentials")
    assert "Secret" not in {doc["kind"] for doc in docs}
    env = container_env(docs)
    assert env["MODELARTS_EXPORTER_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == (
        "modelarts-credentials"
    )
    volumes = workload(docs)["spec"]["template"]["spec"]["volumes"]
    assert {
        "name": "secrets",
        "secret": {"secretName": "modelarts-credentials", "defaultMode": 0o440},
    } in volumes


def test_targets_file_is_mounted_and_named() -> None:
    docs = rendered("ci")
    config_map = next(
        doc for doc in docs if doc["kind"] == "ConfigMap" and "targets.yaml" in doc["data"]
    )
    assert yaml.safe_load(config_map["data"]["targets.yaml"])["targets"][0]["name"] == "platform"
    env = container_env(docs)
    assert (
        env["MODELARTS_EXPORTER_CONFIG_FILE"]["value"]
        == "/etc/modelarts-exporter/config/targets.yaml"
    )
    mounts = {mount["name"]: mount for mount in container(docs)["volumeMounts"]}
    assert mounts["config"] == {
        "name": "config",
        "mountPath": "/etc/modelarts-exporter/config",
        "readOnly": True,
    }


def test_changed_targets_roll_the_pods() -> None:
    """The exporter reads its targets file at start (and on SIGHUP, which Kubernetes does not send):
    a changed file has to change the pod template."""

    def checksum(docs: list[dict[str, Any]]) -> str:
        annotations = workload(docs)["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    before = checksum(rendered("ci"))
    assert checksum(helm_template("--values", str(CI_VALUES))) == before
    changed = helm_template(
        "--values", str(CI_VALUES), "--set", "config.targets.defaults.page_size=50"
    )
    assert checksum(changed) != before


def test_credentials_in_the_targets_file_are_refused() -> None:
    refusal = helm_template_refused("--set", "config.targets.targets[0].secret_key=abc")
    assert "looks like it holds credentials" in refusal


def test_every_rendered_setting_is_one_the_exporter_reads() -> None:
    """The exporter ignores MODELARTS_EXPORTER_* names it does not know, so a misspelt variable in
    the chart would be dropped silently."""
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    known |= {f"{ENV_PREFIX}{name.upper()}_FILE" for name in SECRET_FIELDS}
    names = {
        name
        for values in VALUE_SETS
        for name in container_env(rendered(values))
        if name.startswith(ENV_PREFIX)
    }
    assert sorted(names - known) == []
    # The ci value sets together turn on every variable the templates can set, so all were checked.
    templates = "".join(path.read_text() for path in (CHART / "templates").iterdir())
    assert set(re.findall(rf"{ENV_PREFIX}[A-Z_]+", templates)) <= names


def test_exporter_loads_what_the_ci_pods_get(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variables, the targets file and the Secret's files a pod of ci-values.yaml gets, given to
    the exporter's own loader: every target is valid and the shards split them."""
    docs = rendered("ci")
    secret = only(docs, "Secret")["stringData"]
    targets_file = next(
        doc["data"] for doc in docs if doc["kind"] == "ConfigMap" and "targets.yaml" in doc["data"]
    )
    mounts = {mount["name"]: mount["mountPath"] for mount in container(docs)["volumeMounts"]}
    files = {"config": targets_file, "secrets": secret}

    def moved(text: str) -> str:
        for volume in files:
            text = text.replace(mounts[volume], str(tmp_path / volume))
        return text

    for volume, data in files.items():
        (tmp_path / volume).mkdir()
        for key, value in data.items():
            (tmp_path / volume / key).write_text(moved(value))
    environ: dict[str, str] = {}
    for name, variable in container_env(docs).items():
        if "value" in variable:
            environ[name] = moved(variable["value"])
        elif variable["valueFrom"].get("secretKeyRef", {}).get("key") in secret:
            environ[name] = secret[variable["valueFrom"]["secretKeyRef"]["key"]]
    polled = []
    for shard in range(int(environ["MODELARTS_EXPORTER_TOTAL_SHARDS"])):
        environ["MODELARTS_EXPORTER_SHARD"] = str(shard)  # the pod-index label of pod `shard`
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        polled += [target.name for target in resolve(load(), environ)]
    names = [target["name"] for target in yaml.safe_load(targets_file["targets.yaml"])["targets"]]
    assert sorted(polled) == sorted(names)


def test_servicemonitor_scrapes_the_service() -> None:
    docs = rendered("ci")
    monitor = only(docs, "ServiceMonitor")
    service = only(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_dashboards_configmap_equals_grafana_dashboards() -> None:
    config_map = next(
        doc for doc in rendered("ci") if doc["metadata"]["name"].endswith("-dashboards")
    )
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    expected = {path.name: path.read_text() for path in sorted(DASHBOARDS.glob("*.json"))}
    assert len(expected) == 3
    assert config_map["data"] == expected


def test_prometheus_rule_equals_the_plain_rule_file() -> None:
    rule = only(helm_template("--set", "prometheusRule.enabled=true"), "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(PLAIN_RULES.read_text())["groups"]


def test_generated_copies_are_in_sync() -> None:
    """The plain rule file and the chart's dashboards are exactly what the sync script writes."""
    problems = load_sync_script().stale_copies()
    assert problems == [], "run scripts/sync-deploy-artifacts.py\n" + "\n".join(problems)


def test_prometheus_rule_honours_overrides() -> None:
    docs = helm_template(
        "--set", "prometheusRule.enabled=true",
        "--set", "prometheusRule.thresholds.queueWaitSeconds=7200",
        "--set", "prometheusRule.thresholds.starvationFor=2h",
        "--set", "prometheusRule.additionalRuleLabels.team=ml-platform",
        "--set", "prometheusRule.runbookBaseUrl=https://wiki.example.com/runbook",
    )  # fmt: skip
    rules = {
        rule["alert"]: rule
        for group in only(docs, "PrometheusRule")["spec"]["groups"]
        for rule in group["rules"]
    }
    queued = rules["ModelArtsTrainingJobQueuedTooLong"]
    assert queued["expr"].endswith("> 7200")
    assert queued["labels"] == {"severity": "warning", "team": "ml-platform"}
    assert queued["annotations"]["runbook_url"] == (
        "https://wiki.example.com/runbook#modelartstrainingjobqueuedtoolong"
    )
    assert rules["ModelArtsPoolGpuStarvation"]["for"] == "2h"
    assert "for 2h" in rules["ModelArtsPoolGpuStarvation"]["annotations"]["description"]
    assert all(rule["labels"]["team"] == "ml-platform" for rule in rules.values())


# --- the web config ------------------------------------------------------------------------------

WEB_DIR = "/etc/modelarts-exporter/web"
HASH = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG"  # as in the ci values


def probe_kind(probe: dict[str, Any]) -> str:
    if "tcpSocket" in probe:
        return f"TCP {probe['tcpSocket']['port']}"
    get = probe["httpGet"]
    return f"{get.get('scheme', 'HTTP')} {get['port']} {get['path']}"


HTTP_PROBES = ("HTTP http-metrics /healthz", "HTTP http-metrics /readyz")
HTTPS_PROBES = ("HTTPS http-metrics /healthz", "HTTPS http-metrics /readyz")
PROBES = {
    "defaults": HTTP_PROBES,
    "ci": HTTP_PROBES,
    # /readyz needs no password: the kubelet cannot send one.
    "webconfig-basic-auth": HTTP_PROBES,
    "webconfig-tls": HTTPS_PROBES,
    "webconfig-existing-secret": HTTPS_PROBES,
    # The kubelet has no client certificate to show.
    "webconfig-client-auth": ("TCP http-metrics", "TCP http-metrics"),
}


@pytest.mark.parametrize("values", sorted(VALUE_SETS))
def test_probes_follow_the_web_config(values: str) -> None:
    assert sorted(PROBES) == sorted(VALUE_SETS), "say what the probes of a new value set are"
    probes = container(rendered(values))
    assert (probe_kind(probes["livenessProbe"]), probe_kind(probes["readinessProbe"])) == (
        PROBES[values]
    )


def test_probes_keep_their_other_values_under_tls() -> None:
    probe = container(
        helm_template(
            "--set", "webConfig.tls.secretName=tls",
            "--set", "readinessProbe.periodSeconds=7",
            "--set", "readinessProbe.httpGet.scheme=HTTP",
        )
    )["readinessProbe"]  # fmt: skip
    assert probe["periodSeconds"] == 7
    assert probe["httpGet"]["scheme"] == "HTTPS"


def web_config_volume(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (volume,) = [
        volume
        for volume in workload(docs)["spec"]["template"]["spec"]["volumes"]
        if volume["name"] == "web-config"
    ]
    return volume


@pytest.mark.parametrize("values", WEB_CONFIG_SETS)
def test_web_config_is_mounted_and_named(values: str) -> None:
    docs = rendered(values)
    mounts = {mount["name"]: mount for mount in container(docs)["volumeMounts"]}
    assert mounts["web-config"] == {"name": "web-config", "mountPath": WEB_DIR, "readOnly": True}
    file = container_env(docs)["MODELARTS_EXPORTER_WEB_CONFIG_FILE"]["value"]
    volume = web_config_volume(docs)
    if values == "webconfig-existing-secret":
        assert file == f"{WEB_DIR}/config.yml"
        assert volume["secret"] == {"secretName": "modelarts-exporter-web", "defaultMode": 0o440}
        assert "Secret" not in {doc["kind"] for doc in docs}
    else:
        assert file == f"{WEB_DIR}/web-config.yml"
        assert volume["projected"]["defaultMode"] == 0o440
        secret = only(docs, "Secret")
        assert secret["metadata"]["name"] == "modelarts-exporter-web-config"
        assert volume["projected"]["sources"][0] == {
            "secret": {
                "name": "modelarts-exporter-web-config",
                "items": [{"key": "web-config.yml", "path": "web-config.yml"}],
            }
        }


def test_web_config_sets_try_both_workload_kinds() -> None:
    kinds = {workload(rendered(values))["kind"] for values in WEB_CONFIG_SETS}
    assert kinds == {"Deployment", "StatefulSet"}


def test_existing_web_config_secret_has_a_default_key() -> None:
    docs = helm_template("--set", "webConfig.existingSecret=web")
    assert container_env(docs)["MODELARTS_EXPORTER_WEB_CONFIG_FILE"]["value"] == (
        f"{WEB_DIR}/web-config.yml"
    )
    assert probe_kind(container(docs)["readinessProbe"]) == HTTP_PROBES[1]
    assert only(docs, "Service")["spec"]["ports"][0]["appProtocol"] == "http"


@pytest.mark.parametrize("values", ["defaults", *WEB_CONFIG_SETS])
def test_service_port_tells_whether_it_speaks_tls(values: str) -> None:
    (port,) = only(rendered(values), "Service")["spec"]["ports"]
    assert port["name"] == "http-metrics"  # the ServiceMonitor and the NetworkPolicy name it
    assert port["appProtocol"] == ("http" if PROBES[values][0].startswith("HTTP ") else "https")


def scrape_endpoint(values: str) -> dict[str, Any]:
    (endpoint,) = only(rendered(values), "ServiceMonitor")["spec"]["endpoints"]
    return endpoint


def test_servicemonitor_scrapes_https_with_the_ca_and_the_service_name() -> None:
    endpoint = scrape_endpoint("webconfig-tls")
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == {
        "ca": {"secret": {"name": "modelarts-exporter-tls", "key": "ca.crt"}},
        # Prometheus connects to pod IPs; the certificate names the Service.
        "serverName": "modelarts-exporter.monitoring.svc",
    }
    assert endpoint["basicAuth"] == {
        "username": {"name": "modelarts-exporter-scrape", "key": "user"},
        "password": {"name": "modelarts-exporter-scrape", "key": "pass"},
    }


def test_servicemonitor_shows_a_client_certificate() -> None:
    endpoint = scrape_endpoint("webconfig-client-auth")
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["serverName"] == "modelarts-exporter.monitoring.svc.cluster.local"
    assert endpoint["tlsConfig"]["cert"] == {
        "secret": {"name": "prometheus-scrape-client", "key": "tls.crt"}
    }
    assert endpoint["tlsConfig"]["keySecret"] == {
        "name": "prometheus-scrape-client",
        "key": "tls.key",
    }
    assert "basicAuth" not in endpoint


def test_servicemonitor_sends_a_password_over_plain_http() -> None:
    endpoint = scrape_endpoint("webconfig-basic-auth")
    assert "scheme" not in endpoint and "tlsConfig" not in endpoint
    assert endpoint["basicAuth"]["password"] == {
        "name": "modelarts-exporter-scrape",
        "key": "password",
    }


def test_web_config_changes_do_not_roll_the_pods() -> None:
    """The exporter re-reads its web config file when it changes (Kubernetes updates the mounted
    Secret in place), so no checksum of it is in the pod template."""
    before = workload(rendered("webconfig-tls"))["spec"]["template"]
    after = workload(
        helm_template(
            "--values", VALUE_SETS["webconfig-tls"][1],
            "--set", "webConfig.basicAuthUsers.grafana=" + HASH,
        )
    )["spec"]["template"]  # fmt: skip
    assert after == before


def _pki() -> tuple[trustme.CA, trustme.LeafCert, trustme.CA]:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    return server_ca, server_ca.issue_cert("modelarts-exporter.monitoring.svc"), client_ca


@pytest.mark.parametrize(
    ("values", "described"),
    [
        ("webconfig-basic-auth", "tls=off basic_auth_users=1"),
        ("webconfig-tls", "tls=on basic_auth_users=1"),
        ("webconfig-client-auth", "tls=on with client certificates basic_auth_users=0"),
    ],
)
def test_exporter_accepts_the_web_config_the_chart_renders(
    tmp_path: Path, values: str, described: str
) -> None:
    """The chart's web-config.yml and the Secrets' files, laid out as the pod's projected volume
    lays them out, given to the exporter's own loader."""
    docs = rendered(values)
    server_ca, server, client_ca = _pki()
    secrets = {  # what the Secrets the volume projects hold, by name
        "modelarts-exporter-web-config": only(docs, "Secret")["stringData"],
        "modelarts-exporter-tls": {  # cert-manager's keys
            "tls.crt": server.cert_chain_pems[0].bytes().decode(),
            "tls.key": server.private_key_pem.bytes().decode(),
            "ca.crt": server_ca.cert_pem.bytes().decode(),
        },
        "scrape-clients-ca": {"ca.pem": client_ca.cert_pem.bytes().decode()},
    }
    for source in web_config_volume(docs)["projected"]["sources"]:
        for item in source["secret"]["items"]:
            (tmp_path / item["path"]).write_text(secrets[source["secret"]["name"]][item["key"]])
    file = container_env(docs)["MODELARTS_EXPORTER_WEB_CONFIG_FILE"]["value"]
    config = load_web_config(tmp_path / file.removeprefix(f"{WEB_DIR}/"))
    assert config.describe() == described


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["webConfig.existingSecret=web", "webConfig.tls.secretName=tls"],
            "webConfig.existingSecret holds a complete web-config.yml",
        ),
        (
            ["webConfig.existingSecret=web", f"webConfig.basicAuthUsers.prometheus={HASH}"],
            "webConfig.existingSecret holds a complete web-config.yml",
        ),
        (["webConfig.existingSecretTls=true"], "which is not set"),
        (
            ["webConfig.tls.clientAuthType=RequireAndVerifyClientCert"],
            "clientAuthType needs webConfig.tls.secretName",
        ),
        (
            ["webConfig.tls.secretName=tls", "webConfig.tls.clientCA.secretName=ca"],
            "webConfig.tls.clientAuthType is empty",
        ),
        (
            ["serviceMonitor.enabled=true", "serviceMonitor.tlsConfig.insecureSkipVerify=true"],
            "serviceMonitor.tlsConfig is set but the exporter serves plain HTTP",
        ),
    ],
)
def test_contradicting_web_config_values_are_refused(args: list[str], message: str) -> None:
    refusal = helm_template_refused(*[arg for value in args for arg in ("--set", value)])
    assert message in refusal


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "webConfig.basicAuthUsers.prometheus=plain-password"], "Does not match pattern"),
        (["--set", f"webConfig.basicAuthUsers.a:b={HASH}"], 'Property name of "a:b"'),
        (["--set", "webConfig.tls.clientAuthType=RequireAnyClientCert"], "must be one of"),
        (["--set-string", "webConfig.existingSecretTls=true"], "Expected: boolean"),
        (["--set", "webConfig.tls.secretName=1"], "Expected: string"),
        (["--set", "webConfig.tls.clientCA.key="], "length must be greater"),
        (["--set", "serviceMonitor.tlsConfig.ca=ca.crt"], "Expected: object"),
        (["--set", "serviceMonitor.tlsConfig.insecureSkipVerfy=true"], "insecureSkipVerfy"),
        (["--set", "serviceMonitor.basicAuth.username=prometheus"], "username"),
    ],
)
def test_schema_rejects_wrong_web_config_values(args: list[str], message: str) -> None:
    assert message in helm_template_refused(*args)


# Values passed to Kubernetes whole; the README describes them as one entry.
_OPAQUE_VALUES = {
    "podSecurityContext",
    "securityContext",
    "resources",
    "livenessProbe",
    "readinessProbe",
}


def _leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in _OPAQUE_VALUES:
            keys += _leaf_keys(value, f"{path}.")
        else:
            keys.append(path)
    return keys


def test_readme_lists_every_value() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    readme = (CHART / "README.md").read_text()
    missing = [key for key in _leaf_keys(values) if f"| `{key}` |" not in readme]
    assert missing == []


def _readme_installs() -> list[list[str]]:
    """The `--set` arguments of every `helm install` example of the chart's README."""
    text = (CHART / "README.md").read_text()
    installs = []
    for command in re.findall(r"^helm install .*?(?<!\\)\n", text, re.M | re.S):
        words = command.replace("\\\n", " ").split()
        installs.append([w for i, w in enumerate(words) if i and words[i - 1] == "--set"])
    return installs


def test_the_readme_install_examples_render() -> None:
    installs = _readme_installs()
    assert len(installs) >= 2
    for sets in installs:
        args = [arg for value in sets for arg in ("--set", value)]
        assert workload(helm_template(*args, required=False))
