"""The Grafana dashboards: they type-check against @grafana/schema, every query parses as PromQL
and uses only the metric contract, and their identity (uid, variables) stays stable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.deploy import (
    NODE_DIR,
    TEMPLATE_SUBSTITUTIONS,
    alert_expressions,
    contract_violations,
    dashboard_queries,
    dashboards,
    panels,
    promtool_check_expressions,
    run,
    tool,
)

EXPECTED_UIDS = {
    "modelarts-overview.json": "modelarts-overview",
    "modelarts-exporter-health.json": "modelarts-exporter-health",
    "modelarts-capacity.json": "modelarts-capacity",
}
"""Stable uids: links and bookmarks to the dashboards depend on them."""

_SCHEMA = "@grafana/schema/dist/esm/raw/composable"
PANEL_TYPES = {
    "timeseries": f"{_SCHEMA}/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen",
    "stat": f"{_SCHEMA}/stat/panelcfg/x/StatPanelCfg_types.gen",
    "bargauge": f"{_SCHEMA}/bargauge/panelcfg/x/BarGaugePanelCfg_types.gen",
    "table": f"{_SCHEMA}/table/panelcfg/x/TablePanelCfg_types.gen",
}
"""Panel plugin -> module with its Options and FieldConfig types; rows have neither."""

# JSON holds enum members as their values; this maps @grafana/schema's enums to those literals.
_TS_JSON_TYPE = """\
type Json<T> = unknown extends T ? T
  : T extends string ? `${T}`
  : T extends number | boolean | null | undefined ? T
  : T extends ReadonlyArray<infer U> ? Array<Json<U>>
  : { [K in keyof T]: Json<T[K]> };
"""

_TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "noEmit": True,
        "module": "nodenext",
        "moduleResolution": "nodenext",
        "target": "es2022",
        "skipLibCheck": True,
        "types": [],
    },
    "files": ["dashboards.ts"],
}


def dashboard_typescript(by_name: dict[str, dict[str, Any]]) -> str:
    """A TypeScript module that assigns each dashboard, and each panel's options and custom field
    config, to its @grafana/schema type; object literals make tsc reject unknown fields too."""
    lines = ["import type { Dashboard } from '@grafana/schema';"]
    lines += [f"import type * as {name} from '{module}';" for name, module in PANEL_TYPES.items()]
    lines.append(_TS_JSON_TYPE)

    def assign(name: str, type_: str, value: object) -> None:
        lines.append(f"export const {name}: Json<{type_}> = {json.dumps(value)};")

    for index, (name, dashboard) in enumerate(by_name.items()):
        lines.append(f"// {name}")
        assign(f"dashboard{index}", "Dashboard", dashboard)
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            module = panel["type"]
            assert module in PANEL_TYPES, f"{name}: add the types of panel type {module!r}"
            prefix = f"dashboard{index}_panel{panel['id']}"
            assign(f"{prefix}_options", f"{module}.Options", panel["options"])
            custom = panel["fieldConfig"]["defaults"].get("custom")
            if custom is not None:
                assign(f"{prefix}_custom", f"{module}.FieldConfig", custom)
    return "\n".join(lines) + "\n"


def test_dashboards_type_check_against_grafana_schema(tmp_path: Path) -> None:
    tsc = tool("tsc")
    (tmp_path / "node_modules").symlink_to(NODE_DIR / "node_modules", target_is_directory=True)
    (tmp_path / "tsconfig.json").write_text(json.dumps(_TSCONFIG))
    (tmp_path / "dashboards.ts").write_text(dashboard_typescript(dashboards()))
    run([tsc, "--project", str(tmp_path / "tsconfig.json")], cwd=tmp_path)


def test_type_check_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The type check is not vacuous: a misspelt panel option fails it."""
    tsc = tool("tsc")
    broken = dashboards()
    panel = next(p for p in panels(broken["modelarts-overview.json"]) if p["type"] == "timeseries")
    panel["options"]["legend"]["placment"] = "bottom"
    (tmp_path / "node_modules").symlink_to(NODE_DIR / "node_modules", target_is_directory=True)
    (tmp_path / "tsconfig.json").write_text(json.dumps(_TSCONFIG))
    (tmp_path / "dashboards.ts").write_text(dashboard_typescript(broken))
    with pytest.raises(pytest.fail.Exception, match="placment"):
        run([tsc, "--project", str(tmp_path / "tsconfig.json")], cwd=tmp_path)


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    queries = dashboard_queries()
    assert len(queries) > 30
    for source, expr in queries:
        assert "$" not in expr, f"{source}: unsubstituted variable in {expr!r}"
    promtool_check_expressions(queries, tmp_path)


def test_dashboards_and_alerts_use_only_the_metric_contract() -> None:
    problems = [
        f"{source}: {problem}"
        for source, expr in dashboard_queries() + alert_expressions()
        for problem in contract_violations(expr)
    ]
    assert problems == []


def test_contract_check_catches_a_wrong_name_and_label() -> None:
    assert contract_violations('modelarts_training_job_gpu{pool="x"}') == [
        "unknown metric modelarts_training_job_gpu"
    ]
    assert contract_violations('sum by (pool) (modelarts_training_job_gpus{pool="x"})') == [
        "modelarts_training_job_gpus has no label pool",
        "grouping by unknown label pool",
    ]
    assert contract_violations("rate(modelarts_training_job_gpus[5m])") == [
        "rate() of gauge modelarts_training_job_gpus"
    ]


def test_uids_are_stable_and_unique() -> None:
    found = {name: dashboard["uid"] for name, dashboard in dashboards().items()}
    assert found == EXPECTED_UIDS
    assert len(set(found.values())) == len(found)


@pytest.mark.parametrize("name", sorted(EXPECTED_UIDS))
def test_dashboard_structure(name: str) -> None:
    dashboard = dashboards()[name]
    assert dashboard["schemaVersion"] >= 39
    assert "modelarts" in dashboard["tags"]
    assert "id" not in dashboard, "an exported id ties the dashboard to one Grafana instance"

    variables = {variable["name"]: variable for variable in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert variable["query"]["query"].startswith("label_values(")
            assert f"${variable['name']}" in TEMPLATE_SUBSTITUTIONS

    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    occupied: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & occupied, f"{name}: panel {panel['title']!r} overlaps another"
        occupied |= cells
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel.get("description"), f"{name}: panel {panel['title']!r} needs a description"
            for target in panel["targets"]:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_overview_filters_by_project_pool_and_flavor() -> None:
    dashboard = dashboards()["modelarts-overview.json"]
    names = [variable["name"] for variable in dashboard["templating"]["list"]]
    assert names == ["datasource", "project_id", "pool_id", "flavor_code"]
    exprs = [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]
    assert all('project_id=~"$project_id"' in expr for expr in exprs)


POOL_NAMES = (
    "* on (project_id, pool_id) group_left (pool_name)\n"
    'max by (project_id, pool_id, pool_name) (modelarts_pool_info{project_id=~"$project_id"})'
)
"""How the capacity dashboard gives a per-pool series its display name (only _info has it)."""


def test_capacity_filters_by_project_and_pool_and_names_pools() -> None:
    dashboard = dashboards()["modelarts-capacity.json"]
    names = [variable["name"] for variable in dashboard["templating"]["list"]]
    assert names == ["datasource", "project_id", "pool_id"]
    targets = [target for panel in panels(dashboard) for target in panel.get("targets", [])]
    assert all('project_id=~"$project_id"' in target["expr"] for target in targets)
    per_pool = [target for target in targets if "by (project_id, pool_id" in target["expr"]]
    assert len(per_pool) > 10
    for target in per_pool:
        expr = target["expr"]
        assert 'pool_id=~"$pool_id"' in expr, expr
        # A series or table row per pool shows its name, joined in; the legend not the bare id.
        assert expr.endswith(POOL_NAMES), expr
        assert "{{pool_id}}" not in target["legendFormat"], expr
