"""``API_VERSION`` as a user sets it: the command as a subprocess against a simulator serving v1
and v2, the version given by flag, environment or targets file; bad values in one line."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from modelarts_exporter.simulator import SimulatorServer, V2Tenant
from support.processes import background, free_port, run_cli, sim_env
from support.simulation import SimFactory, parse_samples, select
from support.waiting import wait_for


@pytest.fixture
def sim(simulator: SimFactory) -> SimulatorServer:
    return simulator(size=120, v2=V2Tenant(size=90, workspaces=("0",)))


def _v1_count(sim: SimulatorServer) -> int:
    return len(sim.tenant.records_in("0"))


@pytest.mark.parametrize("how", ["flag", "env", "file"])
@pytest.mark.parametrize("version", ["v2", "both"])
def test_once_lists_v2_jobs(sim: SimulatorServer, tmp_path: Path, how: str, version: str) -> None:
    env = sim_env(sim.url, sim.project_id)
    args = ["once"]
    if how == "flag":
        args += ["--api-version", version, "--page-size", "50"]
    elif how == "env":
        env |= {"MODELARTS_EXPORTER_API_VERSION": version}
    else:
        config = tmp_path / "targets.yaml"
        target = {"name": "t", "endpoint": sim.url, "project_id": sim.project_id}
        config.write_text(json.dumps({"targets": [{**target, "api_version": version}]}))
        env |= {"MODELARTS_EXPORTER_CONFIG_FILE": str(config)}
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    samples = parse_samples(result.stdout)
    assert select(samples, "modelarts_training_jobs") == len(sim.v2)
    expected = len(sim.v2) + (_v1_count(sim) if version == "both" else 0)
    assert select(samples, "modelarts_training_job_versions") == expected


def test_once_defaults_to_v1(sim: SimulatorServer) -> None:
    result = run_cli("once", env=sim_env(sim.url, sim.project_id))
    assert result.returncode == 0, result.stderr
    samples = parse_samples(result.stdout)
    assert select(samples, "modelarts_training_job_versions") == _v1_count(sim)
    assert "modelarts_training_jobs{" not in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--api-version", "v3"],
            "MODELARTS_EXPORTER_API_VERSION: Input should be 'v1', 'v2' or 'both'",
        ),
        (["--api-version", "v2", "--page-size", "100"], "above 50, the most jobs a v2 page holds"),
        (
            ["--api-version", "both", "--poll-mode", "incremental"],
            "POLL_MODE=incremental is not available",
        ),
        (["--api-version", "v2", "--pagination", "all"], "PAGINATION=all has no v2 equivalent"),
    ],
)
def test_bad_api_settings_are_one_line(args: list[str], expected: str) -> None:
    env = {"MODELARTS_EXPORTER_ENDPOINT": "https://x", "MODELARTS_EXPORTER_PROJECT_ID": "p"}
    result = run_cli("check-config", *args, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_check_config_shows_the_api_version(tmp_path: Path) -> None:
    config = tmp_path / "targets.yaml"
    targets = [
        {"name": "old", "endpoint": "https://x", "project_id": "p1"},
        {"name": "new", "endpoint": "https://x", "project_id": "p2", "api_version": "v2"},
    ]
    config.write_text(
        json.dumps({"defaults": {"access_key": "AK", "secret_key": "SK"}, "targets": targets})
    )
    result = run_cli("check-config", env={"MODELARTS_EXPORTER_CONFIG_FILE": str(config)})
    assert result.returncode == 0, result.stderr
    assert "old: https://x project p1" in result.stdout and ", API v1" in result.stdout
    assert ", API v2" in result.stdout


@pytest.mark.parametrize("version", ["v2", "both"])
def test_serve_publishes_v2_jobs_and_shows_the_api_on_the_status_page(
    sim: SimulatorServer, version: str
) -> None:
    port = free_port()
    env = sim_env(sim.url, sim.project_id) | {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_API_VERSION": version,
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "0.5",
    }
    with background(["serve"], env):
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        samples = parse_samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        assert select(samples, "modelarts_training_jobs") == len(sim.v2)
        page = httpx.get(f"http://127.0.0.1:{port}/").text
        assert f"<th>API</th><td>{version}</td>" in page


def test_demo_shows_v2_jobs_beside_v1_versions() -> None:
    port = free_port()
    args = ["demo", "--listen-address", f"127.0.0.1:{port}", "--size", "300"]
    with background(args, {}):
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        samples = parse_samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
        assert select(samples, "modelarts_training_jobs") > 0
        assert select(samples, "modelarts_training_job_versions") > select(
            samples, "modelarts_training_jobs"
        )
