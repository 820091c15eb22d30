"""The deployment kit's files, the tools that check them, and PromQL read lightly.

What is promised to other tests: `dashboard_queries()` and `alert_expressions()` return every
PromQL expression the dashboards and the alert rules run, as (source, expr) pairs with Grafana's
template variables substituted, ready to send to a real Prometheus; `contract()` is the metric
contract they are checked against; `stages()` is the Dockerfile, stage by stage.

The tools come from scripts/install-deploy-tools.sh. A missing tool fails the test that needs it
(it never skips): the test command installs them first.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "modelarts-exporter"
CI_VALUES = CHART / "ci" / "ci-values.yaml"
REQUIRED_VALUES = REPO / "tests" / "deploy" / "required-values.yaml"
"""A project, its endpoints and a credentials Secret: without, the chart renders nothing."""
RULE_SOURCE = CHART / "files" / "modelarts-exporter-rules.yaml"
PLAIN_RULES = REPO / "deploy" / "prometheus" / "modelarts-exporter-rules.yaml"
SCRAPE_EXAMPLE = REPO / "deploy" / "prometheus" / "prometheus-scrape-example.yml"
RULE_TESTS = REPO / "deploy" / "tests" / "modelarts-exporter-rules.test.yaml"
ALERTMANAGER_EXAMPLE = REPO / "docs" / "alertmanager-example.yml"
RUNBOOK = REPO / "docs" / "runbook.md"
DASHBOARDS = REPO / "grafana-dashboards"
DOCKERFILE = REPO / "Dockerfile"
NODE_DIR = REPO / ".tools" / "node"
INSTALL_HINT = "install it with scripts/install-deploy-tools.sh"


# --- tools ---------------------------------------------------------------------------------------

_TOOL_DIRS = (
    REPO / ".tools" / "bin",
    NODE_DIR / "node_modules" / ".bin",
    Path(sys.executable).parent,
)


def tool(name: str) -> str:
    """Path of a checking tool; fails the test when it is not installed."""
    for directory in _TOOL_DIRS:
        candidate = directory / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: {INSTALL_HINT}")
    return found


def run(args: Sequence[str], *, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Runs a tool and fails the test, with its output, when it exits non-zero."""
    result = subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


# --- the Dockerfile -----------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for instruction, args in self.instructions if instruction == keyword]


def stages() -> list[Stage]:
    """The Dockerfile's stages with their (INSTRUCTION, arguments); continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result: list[Stage] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            base, _, name = args.partition(" AS ")
            result.append(Stage(base.strip(), name.strip() or None))
        elif result:
            result[-1].instructions.append((instruction, " ".join(args.split())))
    return result


# --- helm ----------------------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """Rejects a mapping that repeats a key, which PyYAML would silently collapse."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = {key for key in keys if keys.count(key) > 1}
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate keys {sorted(duplicates)}", node.start_mark
            )
        return super().construct_mapping(node, deep=deep)


def helm_template(
    *args: str, release: str = "modelarts-exporter", required: bool = True
) -> list[dict[str, Any]]:
    """The manifests `helm template` renders (args: --values, --set …), as parsed documents.
    Without a values file among the args, :data:`REQUIRED_VALUES` is the base unless
    ``required`` is false (a Secret of the chart's own then needs ``--set secret.existingSecret=``)."""
    if required and "--values" not in args:
        args = ("--values", str(REQUIRED_VALUES), *args)
    rendered = run(
        [tool("helm"), "template", release, str(CHART), "--namespace", "monitoring", *args]
    )
    return [doc for doc in yaml.load_all(rendered.stdout, Loader=_UniqueKeyLoader) if doc]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The single manifest of a kind."""
    matching = [doc for doc in docs if doc["kind"] == kind]
    assert len(matching) == 1, f"expected one {kind}, got {[d['kind'] for d in docs]}"
    return matching[0]


def load_sync_script() -> ModuleType:
    """scripts/sync-deploy-artifacts.py, which renders the generated copies from their sources."""
    path = REPO / "scripts" / "sync-deploy-artifacts.py"
    spec = importlib.util.spec_from_file_location("sync_deploy_artifacts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the metric contract -------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    kind: str  # gauge, counter or histogram
    labels: frozenset[str]


@cache
def contract() -> dict[str, Metric]:
    """The metrics the exporter exposes, from their single declaration (modelarts_exporter.expose.metrics),
    plus Prometheus' `up`. Shared: do not modify."""
    # Imported here, so that a broken exporter package fails the tests that use the contract rather
    # than the collection of every deploy test.
    from modelarts_exporter.expose import metrics  # noqa: PLC0415

    by_name = {
        spec.name: Metric("gauge" if spec.kind == "info" else spec.kind, frozenset(spec.labels))
        for spec in metrics.ALL
    }
    # Prometheus' own scrape health, used by the exporter-down alerts and the health dashboard.
    by_name["up"] = Metric("gauge", frozenset())
    # Both processes' standard process metrics (expose/processes.py), as a scrape shows them.
    from modelarts_exporter.expose.processes import process_registry  # noqa: PLC0415

    for family in process_registry(os.getpid()).collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        by_name[name] = Metric(family.type, frozenset())
    return by_name


TARGET_LABELS = frozenset({"job", "instance"})
"""Labels Prometheus attaches to every scraped series."""


def exposed_series() -> dict[str, tuple[Metric, str]]:
    """Series name -> (metric, suffix) for the contract; histograms expand to _bucket etc."""
    names: dict[str, tuple[Metric, str]] = {}
    for name, metric in contract().items():
        if metric.kind == "histogram":
            for suffix in ("_bucket", "_count", "_sum"):
                names[name + suffix] = (metric, suffix)
        else:
            names[name] = (metric, "")
    return names


# --- PromQL, lightly -----------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)")
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RATE_ARGUMENT = re.compile(r"\b(rate|irate|increase)\s*\(\s*([a-zA-Z_:][\w:]*)")


def metric_names(expr: str) -> set[str]:
    """Identifiers that name series: selectors with braces, and `modelarts_*` names without."""
    names = {match.group(1) for match in _SELECTOR.finditer(expr)}
    bare = _STRING.sub('""', expr)
    names |= {name for name in _IDENTIFIER.findall(bare) if name.startswith("modelarts_")}
    return names


def contract_violations(expr: str) -> list[str]:
    """What in one expression disagrees with the metric contract (unknown names, labels, types)."""
    series = exposed_series()
    problems = [
        f"unknown metric {name}" for name in sorted(metric_names(expr)) if name not in series
    ]
    all_labels = set().union(*(metric.labels for metric in contract().values())) | TARGET_LABELS
    for name, matchers in _SELECTOR.findall(expr):
        if name not in series:
            continue
        metric, suffix = series[name]
        allowed = metric.labels | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
        problems += [
            f"{name} has no label {label}"
            for label in _MATCHER_LABEL.findall(_STRING.sub('""', matchers))
            if label not in allowed
        ]
    for grouping in _GROUPING.findall(expr):
        problems += [
            f"grouping by unknown label {label}"
            for label in (part.strip() for part in grouping.split(","))
            if label and label not in all_labels | {"le"}
        ]
    problems += [
        f"{function}() of gauge {name}"
        for function, name in _RATE_ARGUMENT.findall(expr)
        if name in series and series[name][0].kind == "gauge"
    ]
    if "histogram_quantile" in expr and "_bucket" not in expr:
        problems.append("histogram_quantile() without a _bucket series")
    return problems


def promtool_check_expressions(pairs: Sequence[tuple[str, str]], workdir: Path) -> None:
    """Fails the test unless promtool parses every expression (as a throw-away recording rule)."""
    rules = [
        {"record": f"check:expression_{index}", "expr": expr}
        for index, (_, expr) in enumerate(pairs)
    ]
    path = workdir / "expressions.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        index = "\n".join(f"expression_{i}: {source}" for i, (source, _) in enumerate(pairs))
        pytest.fail(f"promtool rejects expressions:\n{result.stdout}{result.stderr}\n{index}")


# --- dashboards ----------------------------------------------------------------------------------

TEMPLATE_SUBSTITUTIONS = {
    "$__rate_interval": "2m",
    "$__interval": "1m",
    "$__range": "1h",
    "$project_id": ".*",
    "$pool_id": ".*",
    "$flavor_code": ".*",
}
"""Values for the dashboards' variables that make each query select everything, as `All` does."""


def substitute(expr: str, substitutions: Mapping[str, str] = TEMPLATE_SUBSTITUTIONS) -> str:
    for variable in sorted(substitutions, key=len, reverse=True):
        expr = expr.replace(variable, substitutions[variable])
    return expr


@cache
def _load_dashboards() -> tuple[tuple[str, str], ...]:
    return tuple((path.name, path.read_text()) for path in sorted(DASHBOARDS.glob("*.json")))


def dashboards() -> dict[str, dict[str, Any]]:
    """grafana-dashboards/*.json by file name (fresh copies: callers may change them)."""
    return {name: json.loads(text) for name, text in _load_dashboards()}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


_LABEL_VALUES = re.compile(r"^label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)$")


def variable_parts(query: str) -> tuple[str | None, str]:
    """The series selector (if any) and the label of a `label_values(selector, label)` query."""
    match = _LABEL_VALUES.match(query.strip())
    assert match is not None, f"unsupported variable query {query!r}"
    return match.group("selector"), match.group("label")


def dashboard_queries(
    substitutions: Mapping[str, str] = TEMPLATE_SUBSTITUTIONS,
) -> list[tuple[str, str]]:
    """(source, PromQL) for every panel target and variable query of the dashboards, substituted.

    A `label_values(selector, label)` variable becomes `count by (label) (selector)`: the PromQL
    that has a series per value the variable offers."""
    pairs = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                source = f"{name}: panel {panel['title']!r} {target['refId']}"
                pairs.append((source, substitute(target["expr"], substitutions)))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                selector, label = variable_parts(variable["query"]["query"])
                if selector is not None:
                    expr = substitute(f"count by ({label}) ({selector})", substitutions)
                    pairs.append((f"{name}: variable {variable['name']}", expr))
    return pairs


# --- alert rules ---------------------------------------------------------------------------------


def plain_rules() -> list[dict[str, Any]]:
    """Every rule of the plain rule file."""
    groups = yaml.safe_load(PLAIN_RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alert_expressions() -> list[tuple[str, str]]:
    """(source, PromQL) for every alert of the plain rule file (the chart's defaults)."""
    return [(f"alert {rule['alert']}", rule["expr"]) for rule in plain_rules() if "alert" in rule]


# --- Prometheus-Operator CRD schemas -------------------------------------------------------------


def _close_objects(schema: Any) -> None:
    """Forbid unknown fields wherever the model lists its fields, as the operator's CRDs do."""
    if isinstance(schema, dict):
        if "properties" in schema:
            schema.setdefault("additionalProperties", False)
        for value in schema.values():
            _close_objects(value)
    elif isinstance(schema, list):
        for value in schema:
            _close_objects(value)


@cache
def operator_schema(kind: str) -> dict[str, Any]:
    """JSON schema of a monitoring.coreos.com/v1 kind, from the operator's generated models
    (shared: do not modify)."""
    from cloudcoil.models.prometheus_operator import v1  # noqa: PLC0415 - heavy, only these tests

    schema: dict[str, Any] = getattr(v1, kind).model_json_schema(by_alias=True, mode="validation")
    _close_objects(schema)
    return schema
