"""The alert rules, their promtool unit tests, the runbook they link to, and the Prometheus and
Alertmanager examples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from support.deploy import (
    ALERTMANAGER_EXAMPLE,
    CHART,
    PLAIN_RULES,
    RULE_SOURCE,
    RULE_TESTS,
    RUNBOOK,
    SCRAPE_EXAMPLE,
    helm_template,
    only,
    plain_rules,
    run,
    tool,
)

SEVERITIES = {"critical", "warning"}


def alerts() -> dict[str, dict[str, object]]:
    return {rule["alert"]: rule for rule in plain_rules() if "alert" in rule}


def runbook_anchors() -> set[str]:
    """GitHub's anchors for the runbook's second-level headings."""
    headings = re.findall(r"^## (.+)$", RUNBOOK.read_text(), flags=re.MULTILINE)
    return {
        re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings
    }


def test_promtool_checks_the_plain_rule_file() -> None:
    run([tool("promtool"), "check", "rules", str(PLAIN_RULES)])


def test_promtool_checks_the_rules_the_chart_renders_with_overrides(tmp_path: Path) -> None:
    rule = only(
        helm_template(
            "--set", "prometheusRule.enabled=true",
            "--set", "prometheusRule.thresholds.failureRatioWindow=3h",
            "--set", "prometheusRule.jobRegex=exporters/.*",
        ),
        "PrometheusRule",
    )  # fmt: skip
    path = tmp_path / "rendered.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    run([tool("promtool"), "check", "rules", str(path)])


def test_promtool_unit_tests_pass() -> None:
    run([tool("promtool"), "test", "rules", str(RULE_TESTS)], cwd=RULE_TESTS.parent)


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    cases: dict[str, set[bool]] = {name: set() for name in alerts()}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    assert {name: seen for name, seen in cases.items() if seen != {True, False}} == {}


def test_rule_tests_load_the_plain_rule_file() -> None:
    rule_files = yaml.safe_load(RULE_TESTS.read_text())["rule_files"]
    assert [(RULE_TESTS.parent / path).resolve() for path in rule_files] == [PLAIN_RULES.resolve()]


@pytest.mark.parametrize("name", sorted(alerts()))
def test_alert_has_severity_summary_description_and_runbook(name: str) -> None:
    rule = alerts()[name]
    labels, annotations = rule["labels"], rule["annotations"]
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    assert labels["severity"] in SEVERITIES
    assert annotations["summary"] and annotations["description"]
    base, _, anchor = annotations["runbook_url"].partition("#")
    assert base.startswith("https://") and base.endswith("docs/runbook.md")
    assert anchor == name.lower()
    assert anchor in runbook_anchors()


def test_runbook_has_one_section_per_alert() -> None:
    assert runbook_anchors() == {name.lower() for name in alerts()}


def test_rule_source_has_only_known_placeholders() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    known = set(values["prometheusRule"]["thresholds"]) | {"runbookBaseUrl", "jobRegex"}
    used = set(re.findall(r"\$\{(\w+)\}", RULE_SOURCE.read_text()))
    assert used <= known
    assert known - {"runbookBaseUrl", "jobRegex"} <= used, "unused thresholds"


def test_scrape_example_is_a_valid_prometheus_config() -> None:
    run([tool("promtool"), "check", "config", str(SCRAPE_EXAMPLE)], cwd=SCRAPE_EXAMPLE.parent)
    config = yaml.safe_load(SCRAPE_EXAMPLE.read_text())
    assert config["rule_files"] == [PLAIN_RULES.name]
    (job,) = config["scrape_configs"]
    assert re.fullmatch(".*modelarts.*", job["job_name"]), (
        "the exporter-down alerts select this job"
    )
    assert job["static_configs"][0]["targets"] == ["localhost:9878"]


def test_alertmanager_example_is_valid() -> None:
    run([tool("amtool"), "check-config", str(ALERTMANAGER_EXAMPLE)])


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=ModelArtsExporterDataStale", "severity=critical"], "monitoring-pager"),
        (["alertname=ModelArtsExporterPollFailing", "severity=warning"], "monitoring-team"),
        (["alertname=ModelArtsApiThrottled", "severity=warning"], "monitoring-team"),
        (["alertname=ModelArtsPoolGpuStarvation", "severity=warning"], "ml-platform"),
        (["alertname=ModelArtsPoolPollFailing", "severity=warning"], "monitoring-team"),
        (["alertname=ModelArtsPoolOutOfFreeCards", "severity=warning"], "ml-platform"),
        (["alertname=ModelArtsTrainingJobFailureRatioHigh", "severity=warning"], "ml-platform"),
        (["alertname=SomethingElse", "severity=critical"], "default"),
    ],
)
def test_alertmanager_example_routes(labels: list[str], receiver: str) -> None:
    result = run(
        [
            tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER_EXAMPLE}",
            *labels,
        ]
    )
    assert result.stdout.strip() == receiver
