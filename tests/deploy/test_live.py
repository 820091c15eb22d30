"""The deployment kit against the real thing: Debian's Prometheus scrapes exporters that poll the
simulator, loads the shipped rule file, and answers every dashboard query and every alert
expression with data. A dashboard or alert that asks for a metric, a label or a label value the
exporter does not produce fails here, which the static checks of test_dashboards.py cannot
promise.

The scenario, all on 127.0.0.1, takes 10-20 s:

- project `live-project`: 2,000 versions evolving 60x faster than real time, polled every second
  by a healthy exporter, so jobs start and finish between polls and the histograms and counters
  get observations;
- project `v2-project`: the same for new-version jobs, with per-user metrics (`USER_METRICS`);
- project `stuck-project`: a tenant that stands still, whose pool `pool-stuck` holds only pending
  GPU and NPU versions, the oldest queued for two hours. The pool exists, every card of it taken
  and one node abnormal. After its exporter's first good job poll and first good pool poll the
  API answers every job request 429 and every pool list 503: the exporter keeps both snapshots
  and reports both polls failing; its web configuration (plain HTTP, a header) is then
  overwritten with broken YAML, which it refuses to load, keeping the previous one;
- a fourth scrape target where nothing listens: an exporter that is down.

Every exporter polls its project's resource pools (the simulator's, see simulator/pools.py) every
second.

Together they make every alert fire except those listed in EXPECTED_EMPTY.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelarts_exporter.simulator import (
    FaultKind,
    FaultRule,
    PoolModel,
    PoolSim,
    SimulatorServer,
    Tenant,
    V2Tenant,
    pools,
)
from support.deploy import (
    PLAIN_RULES,
    SCRAPE_EXAMPLE,
    TEMPLATE_SUBSTITUTIONS,
    alert_expressions,
    dashboard_queries,
    tool,
)
from support.processes import free_port
from support.secrets import TOKEN

LIVE_PROJECT = "live-project"
STUCK_PROJECT = "stuck-project"
V2_PROJECT = "v2-project"
STUCK_POOL = "pool-stuck"
GPU_FLAVOR = "modelarts.p3.8xlarge"  # 4 GPUs
NPU_FLAVOR = "modelarts.bm.ascend.d910.8"  # 8 NPUs
POOL_GPU_NODE = "modelarts.vm.gpu.4a100"  # 4 GPUs a node
POOL_NPU_NODE = "modelarts.bm.npu.arm.8snt9b3.d"  # 8 NPUs a node
HOUR_MS = 3_600_000

POOL_POLLED = re.compile(r"^modelarts_exporter_pool_up\{[^}]*\} 1(\.0)?$", re.MULTILINE)
"""The exposition's line once a pool poll succeeded."""

ANSWER_TIMEOUT_S = 60.0
"""How long the series may take to show up; the wait usually ends within 15 s."""

LIVE_SUBSTITUTIONS = {
    **TEMPLATE_SUBSTITUTIONS,
    # `.+`, not `.*`: a matcher on a label the series lack then selects nothing, so a misspelt
    # label name in a dashboard's filter shows up as a panel without data.
    "$project_id": ".+",
    "$pool_id": ".+",
    "$flavor_code": ".+",
    # A short window, as Grafana picks for a short time range: the test has seconds of samples.
    "$__rate_interval": "30s",
}

EXPECTED_EMPTY = {
    "ModelArtsExporterAbsent": "fires only when Prometheus has no exporter target at all",
    "ModelArtsExporterDataStale": "needs a last successful poll 30 minutes old",
    "ModelArtsTrainingJobFailureRatioHigh": (
        "the simulated tenant fails about 15% of its jobs, under the 50% threshold"
    ),
    "ModelArtsExporterLabelValuesCapped": (
        "needs more distinct pools, flavors or status codes than MAX_LABEL_VALUES for an hour"
    ),
}
"""Alerts whose expression is empty in this scenario, and why. Their probe (the expression
without its thresholds, see `probe`) must still return data."""


# --- processes -----------------------------------------------------------------------------------


@dataclass
class Background:
    """A process the test started, its output going to a log file."""

    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, args: list[str], log: Path, env: dict[str, str] | None = None) -> Background:
        with log.open("wb") as out:
            process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        return cls(process, log)

    def wait_ok(self, url: str, timeout: float = 20, has: re.Pattern[str] | None = None) -> None:
        """Waits until ``url`` answers 200 (with a body ``has`` matches, if given); fails with the
        log if the process exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.process.args} exited {self.process.returncode}:\n{self.output}")
            try:
                answer = httpx.get(url, timeout=1)
                if answer.status_code == 200 and (has is None or has.search(answer.text)):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        wanted = "200" if has is None else f"200 with {has.pattern}"
        pytest.fail(f"{url} did not answer {wanted} within {timeout} s:\n{self.output}")

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Stack:
    prometheus: httpx.Client
    """Talks to the Prometheus HTTP API (its base URL is set)."""
    dead_target: str
    """The scrape target where nothing listens."""
    stuck_target: str
    """The stuck project's exporter, whose web configuration breaks while it serves."""


def _exporter(
    sim: SimulatorServer,
    port: int,
    log: Path,
    web_config: Path | None = None,
    api_version: str = "v1",
    user_metrics: bool = False,
) -> Background:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELARTS_EXPORTER_")}
    if web_config is not None:
        env["MODELARTS_EXPORTER_WEB_CONFIG_FILE"] = str(web_config)
    env |= {
        "NO_PROXY": "127.0.0.1,localhost",
        "MODELARTS_EXPORTER_ENDPOINT": sim.url,
        "MODELARTS_EXPORTER_PROJECT_ID": sim.project_id,
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "1",
        "MODELARTS_EXPORTER_MAX_RETRIES": "0",
        "MODELARTS_EXPORTER_API_VERSION": api_version,
        "MODELARTS_EXPORTER_POOLS": "true",
        "MODELARTS_EXPORTER_POOL_INTERVAL_SECONDS": "1",
        # Not the default (the 1 s interval): a busy machine may take longer over a pool poll.
        "MODELARTS_EXPORTER_POOL_TIMEOUT_SECONDS": "30",
        "MODELARTS_EXPORTER_USER_METRICS": "true" if user_metrics else "false",
    }
    return Background.start([tool("modelarts-exporter"), "serve"], log, env)


def _stuck_tenant() -> Tenant:
    """Pending GPU and NPU versions in a pool where nothing runs; a GPU job runs elsewhere."""
    tenant = Tenant(size=0, seed=3)
    now = tenant.now_ms
    for age_ms, flavor in (
        (2 * HOUR_MS, GPU_FLAVOR),
        (HOUR_MS // 2, GPU_FLAVOR),
        (HOUR_MS, NPU_FLAVOR),
    ):
        tenant.add_version(
            status=7, pool_id=STUCK_POOL, flavor_code=flavor, create_time=now - age_ms
        )
    tenant.add_version(status=8, flavor_code=GPU_FLAVOR, create_time=now - HOUR_MS)
    return tenant


def _stuck_pools() -> PoolSim:
    """The stuck project's one pool, `pool-stuck`: one GPU and one NPU node, every card taken by
    other workloads, and an abnormal NPU node (a PoolSim for SimulatorServer's `pools`)."""
    full = pools.SimPool(
        STUCK_POOL,
        "stuck-train",
        "Dedicate",
        ("Train",),
        (
            pools.NodeGroup(POOL_GPU_NODE, available=1),
            pools.NodeGroup(POOL_NPU_NODE, available=1, abnormal=1),
        ),
        "object",
        extra_cards=4 + 8,
    )
    return PoolSim(PoolModel(None, pools=(full,)))


def _prometheus_config(targets: list[str]) -> dict[str, Any]:
    """The shipped scrape example with the test's targets, 1 s intervals and the rule file."""
    config: dict[str, Any] = yaml.safe_load(SCRAPE_EXAMPLE.read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PLAIN_RULES)]
    (job,) = config["scrape_configs"]
    job |= {"scrape_interval": "1s", "scrape_timeout": "1s"}
    job["static_configs"] = [{"targets": targets}]
    return config


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("live")
    live = SimulatorServer(
        Tenant(size=2000, seed=11, active_fraction=0.1),
        project_id=LIVE_PROJECT,
        tokens=[TOKEN],
        realtime_speed=60,
    )
    stuck = SimulatorServer(
        _stuck_tenant(), project_id=STUCK_PROJECT, tokens=[TOKEN], pools=_stuck_pools()
    )
    v2 = SimulatorServer(
        Tenant(size=0),
        v2=V2Tenant(size=2000, seed=11, workspaces=("0",)),
        project_id=V2_PROJECT,
        tokens=[TOKEN],
        realtime_speed=60,
    )
    started: list[Background] = []
    try:
        live.start()
        stuck.start()
        v2.start()
        ports = {"live": free_port(), "stuck": free_port(), "dead": free_port(), "v2": free_port()}
        live_exporter = _exporter(live, ports["live"], work / "exporter-live.log")
        started.append(live_exporter)
        v2_exporter = _exporter(
            v2, ports["v2"], work / "exporter-v2.log", api_version="v2", user_metrics=True
        )
        started.append(v2_exporter)
        # Plain HTTP with a web configuration (headers only), which breaks once it serves.
        web_config = work / "web-config.yml"
        web_config.write_text("http_server_config:\n  headers:\n    X-Frame-Options: deny\n")
        stuck_exporter = _exporter(
            stuck, ports["stuck"], work / "exporter-stuck.log", web_config=web_config
        )
        started.append(stuck_exporter)
        targets = [f"127.0.0.1:{port}" for port in ports.values()]
        config = work / "prometheus.yml"
        config.write_text(yaml.safe_dump(_prometheus_config(targets)))
        url = f"http://127.0.0.1:{free_port()}"
        prometheus = Background.start(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address={url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            work / "prometheus.log",
        )
        started.append(prometheus)
        prometheus.wait_ok(f"{url}/-/ready")
        # The stuck project's API starts failing once its exporter holds a job snapshot and a
        # pool snapshot.
        stuck_exporter.wait_ok(f"http://{targets[1]}/readyz")
        stuck_exporter.wait_ok(f"http://{targets[1]}/metrics", has=POOL_POLLED)
        stuck.faults.add(FaultRule(FaultKind.THROTTLE, retry_after=None))
        stuck.pools.failing["pools"] = 503
        web_config.write_text("http_server_config: [not, a, mapping\n")
        live_exporter.wait_ok(f"http://{targets[0]}/readyz")
        v2_exporter.wait_ok(f"http://{targets[3]}/readyz")
        with httpx.Client(base_url=url, timeout=10) as client:
            yield Stack(client, targets[2], targets[1])
    finally:
        for process in reversed(started):
            process.stop()
        live.stop()
        stuck.stop()
        v2.stop()


# --- asking Prometheus ---------------------------------------------------------------------------

_GROUPING = re.compile(r"\bby\s*\(([^)]*)\)")


def query(stack: Stack, expr: str) -> list[dict[str, Any]]:
    """The instant vector an expression evaluates to now (a scalar as one unlabelled series)."""
    body = stack.prometheus.get("/api/v1/query", params={"query": expr}).json()
    assert body["status"] == "success", f"{expr}: {body}"
    data = body["data"]
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data["result"]
    return result


def shortfall(expr: str, series: list[dict[str, Any]]) -> str | None:
    """Why a result would leave a panel or an alert without data; ``None`` if it has data."""
    if not series:
        return "no series"
    if all(math.isnan(float(s["value"][1])) for s in series):
        return "only NaN"
    for grouping in _GROUPING.findall(expr):
        for label in (part.strip() for part in grouping.split(",")):
            if label and label != "le" and not any(s["metric"].get(label) for s in series):
                return f"no series has the label {label} it is grouped by"
    return None


def wait_for_data(stack: Stack, exprs: Mapping[str, str]) -> dict[str, str]:
    """Asks until every expression has data or the time is up; what still lacks it, and why."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while True:
        missing = {
            source: f"{why}: {expr}"
            for source, expr in exprs.items()
            if (why := shortfall(expr, query(stack, expr)))
        }
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(1)


def eventually(check: Callable[[], list[str]]) -> list[str]:
    """Runs ``check`` until it reports nothing or the time is up; its last report."""
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while (problems := check()) and time.monotonic() < deadline:
        time.sleep(1)
    return problems


_BRACES = re.compile(r"(\{[^}]*\})")
_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(?!\s*bool\b)")
_ABSENT = re.compile(r"^\s*absent\((.*)\)\s*$", re.DOTALL)


def probe(expr: str) -> str:
    """The alert expression without its thresholds: `absent(x)` becomes `x`, and every comparison
    gets `bool`, so it returns 0 or 1 for each series instead of dropping those under the
    threshold. It has data exactly when the metrics and labels the alert compares exist."""
    if match := _ABSENT.match(expr):
        return match.group(1)
    parts = _BRACES.split(expr)  # odd parts are label matchers, whose `!=` stays as it is
    return "".join(
        part if index % 2 else _COMPARISON.sub(r"\1 bool", part) for index, part in enumerate(parts)
    )


def report(missing: Mapping[str, str]) -> str:
    return "\n".join(f"{source}: {why}" for source, why in sorted(missing.items()))


# --- the tests -----------------------------------------------------------------------------------


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    queries = dict(dashboard_queries(LIVE_SUBSTITUTIONS))
    assert len(queries) > 30
    missing = wait_for_data(stack, queries)
    assert not missing, "dashboard queries without data:\n" + report(missing)


def test_every_dashboard_query_returns_data_for_a_v2_target(stack: Stack) -> None:
    """The same dashboards over new-version jobs: each query narrowed to the v2 project (those
    about the exporter itself, which name no project, are answered by every target)."""
    queries = dict(dashboard_queries({**LIVE_SUBSTITUTIONS, "$project_id": V2_PROJECT}))
    missing = wait_for_data(stack, queries)
    assert not missing, "dashboard queries without data for the v2 target:\n" + report(missing)


def test_every_alert_expression_returns_data_unless_expected_empty(stack: Stack) -> None:
    alerts = {source.removeprefix("alert "): expr for source, expr in alert_expressions()}
    assert set(EXPECTED_EMPTY) <= set(alerts), "EXPECTED_EMPTY names an alert that is gone"
    exprs = {}
    for name, expr in alerts.items():
        if name in EXPECTED_EMPTY:
            exprs[f"{name} (probe, as {EXPECTED_EMPTY[name]})"] = probe(expr)
        else:
            exprs[name] = expr
    missing = wait_for_data(stack, exprs)
    assert not missing, "alert expressions without data:\n" + report(missing)


def test_prometheus_evaluates_every_rule_and_raises_the_scenarios_alerts(stack: Stack) -> None:
    expected = {
        ("ModelArtsExporterDown", "instance", stack.dead_target),
        ("ModelArtsExporterWebConfigReloadFailed", "instance", stack.stuck_target),
        ("ModelArtsExporterPollFailing", "project_id", STUCK_PROJECT),
        ("ModelArtsApiThrottled", "project_id", STUCK_PROJECT),
        ("ModelArtsTrainingJobQueuedTooLong", "project_id", STUCK_PROJECT),
        ("ModelArtsPoolGpuStarvation", "pool_id", STUCK_POOL),
        ("ModelArtsPoolNpuStarvation", "pool_id", STUCK_POOL),
        ("ModelArtsPoolPollFailing", "project_id", STUCK_PROJECT),
        ("ModelArtsPoolNodesAbnormal", "pool_id", STUCK_POOL),
        ("ModelArtsPoolOutOfFreeCards", "pool_id", STUCK_POOL),
        # Both kinds of card wait in the stuck pool, each its own alert.
        ("ModelArtsPoolOutOfFreeCards", "accelerator", "gpu"),
        ("ModelArtsPoolOutOfFreeCards", "accelerator", "npu"),
    }
    names = {name for name, _ in alert_expressions()}
    assert {f"alert {name}" for name, _, _ in expected} | {
        f"alert {name}" for name in EXPECTED_EMPTY
    } == names, "every alert is either raised here or expected empty"

    def unhealthy_rules() -> list[str]:
        groups = stack.prometheus.get("/api/v1/rules").json()["data"]["groups"]
        return [
            f"{rule['name']}: {rule['health']} {rule.get('lastError', '')}"
            for group in groups
            for rule in group["rules"]
            if rule["health"] != "ok"
        ]

    def alerts_not_raised() -> list[str]:
        active = stack.prometheus.get("/api/v1/alerts").json()["data"]
        raised = {
            (alert["labels"]["alertname"], key, alert["labels"].get(key))
            for alert in active["alerts"]
            for key in ("instance", "project_id", "pool_id", "accelerator")
        }
        return [f"{name} {key}={value}" for name, key, value in sorted(expected - raised)]

    assert eventually(unhealthy_rules) == []
    assert eventually(alerts_not_raised) == []


def test_the_checks_catch_a_wrong_metric_label_or_value(stack: Stack) -> None:
    """Not vacuous: what a typo in a dashboard would ask for gets no data here."""
    wait_for_data(stack, {"gpus": "modelarts_training_job_gpus"})
    typos = {
        "metric name": 'sum(modelarts_training_job_gpu{project_id=~".+"})',
        "label in a filter": 'sum(modelarts_training_job_gpus{pool=~".+"})',
        "label value": 'sum(modelarts_training_job_gpus{phase="runing"})',
        "grouping label": "sum by (pool) (modelarts_training_job_gpus)",
    }
    assert {what: shortfall(expr, query(stack, expr)) for what, expr in typos.items()} == {
        "metric name": "no series",
        "label in a filter": "no series",
        "label value": "no series",
        "grouping label": "no series has the label pool it is grouped by",
    }
    assert probe('time() - x{a!="b"} > 1800') == 'time() - x{a!="b"} > bool 1800'
    assert probe('absent(up{job=~".*m.*"})') == 'up{job=~".*m.*"}'
