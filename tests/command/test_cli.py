"""The ``modelarts-exporter`` command, run as a user runs it: a subprocess against the simulator."""

from __future__ import annotations

import signal
import socket
import time

import httpx
import pytest

from modelarts_exporter.config.targets import shard_of
from modelarts_exporter.simulator import FaultKind, FaultRule, SimulatorServer, Tenant
from modelarts_exporter.simulator.faults import FAULT_HELP
from support.processes import background, free_port, run_cli, sim_env
from support.secrets import SECRET_KEY, TOKEN, WRONG_TOKEN
from support.simulation import SimFactory, parse_samples, select
from support.waiting import eventually, wait_for


def test_once_failure_is_one_line_with_the_reason(simulator: SimFactory) -> None:
    sim = simulator(size=10)
    env = sim_env(sim.url, sim.project_id) | {"MODELARTS_EXPORTER_AUTH_TOKEN": WRONG_TOKEN}
    result = run_cli("once", env=env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"modelarts-exporter: poll failed: {sim.project_id}: auth: HTTP 401")
    assert WRONG_TOKEN not in result.stderr


def test_once_shows_a_hostile_api_error_as_one_printable_line(simulator: SimFactory) -> None:
    sim = simulator(size=10)
    forged = "2026-12-02 15:00:00,000 ERROR modelarts_exporter forged"
    message = f"denied\n{forged}\x1b[2J\x1b]0;owned\x07\u202e\r\n{forged}"
    sim.faults.add(FaultRule(FaultKind.API_ERROR, error_message=message))
    result = run_cli("once", env=sim_env(sim.url, sim.project_id))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].isprintable(), result.stderr
    assert lines[0].startswith(f"modelarts-exporter: poll failed: {sim.project_id}: api_error:")


def test_once_against_nothing_is_a_connection_error() -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
        "MODELARTS_EXPORTER_MAX_RETRIES": "0",
    }
    result = run_cli("once", env=env)
    assert result.returncode == 1
    assert "poll failed: p1: connection: ConnectError" in result.stderr
    assert "Traceback" not in result.stderr


def test_healthcheck_problems_are_exit_1_in_one_line() -> None:
    """Never 2, which Docker reserves; never a traceback. Nothing listening, and the answers of
    a live exporter: deploy/test_docker.py."""
    refused = run_cli(
        "healthcheck", env={"MODELARTS_EXPORTER_LISTEN_ADDRESS": f"0.0.0.0:{free_port()}"}
    )
    bad_address = run_cli("healthcheck", env={"MODELARTS_EXPORTER_LISTEN_ADDRESS": "9878"})
    bad_flag = run_cli("healthcheck", "--project-id", "p1")
    for result in (refused, bad_address, bad_flag):
        assert result.returncode == 1
        assert result.stderr.startswith("modelarts-exporter: unhealthy: ")
        assert result.stderr.count("\n") == 1, result.stderr
    assert "127.0.0.1" in refused.stderr and "Connection refused" in refused.stderr
    assert "MODELARTS_EXPORTER_LISTEN_ADDRESS: expected host:port" in bad_address.stderr
    assert "unrecognized arguments: --project-id" in bad_flag.stderr


def test_check_config_masks_secrets_and_reports_problems() -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": "https://modelarts.example",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_ACCESS_KEY": "AKVISIBLE",
        "MODELARTS_EXPORTER_SECRET_KEY": SECRET_KEY,
    }
    ok = run_cli("check-config", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "AKVISIBLE" in ok.stdout and SECRET_KEY not in ok.stdout
    assert "MODELARTS_EXPORTER_SECRET_KEY" in ok.stdout and "**********" in ok.stdout

    bad = run_cli("check-config", "--page-size", "0", "--poll-interval-seconds", "soon", env=env)
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 2, bad.stderr
    assert all(line.startswith("modelarts-exporter: configuration error: ") for line in lines)
    assert "Traceback" not in bad.stderr and SECRET_KEY not in bad.stderr

    missing = run_cli("check-config")
    assert missing.returncode == 2
    assert "MODELARTS_EXPORTER_ENDPOINT (--endpoint) is required" in missing.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_and_a_signal_stops_it_mid_poll(
    simulator: SimFactory, sig: signal.Signals
) -> None:
    sim = simulator(size=400)
    port = free_port()
    env = sim_env(sim.url, sim.project_id) | {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "0.5",
        # Only the signal can end the stuck poll: its request would wait 30 s for an answer.
        "MODELARTS_EXPORTER_POLL_TIMEOUT_SECONDS": "60",
        "MODELARTS_EXPORTER_REQUEST_TIMEOUT_SECONDS": "60",
        "MODELARTS_EXPORTER_LOG_FORMAT": "json",
    }
    with background(["serve"], env) as process:
        ready = wait_for(f"http://127.0.0.1:{port}/readyz", 200)
        assert ready
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert select(parse_samples(metrics), "modelarts_exporter_up") == 1
        sim.faults.latency_seconds = 30  # every request from now on is stuck
        # Wait until a request of a poll is really in flight: received, not answered.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stats = sim.stats
            if stats.requests > sum(stats.by_status.values()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("no poll got stuck")
        process.send_signal(sig)
        assert process.wait(timeout=20) == 0  # long before the stuck request would end
        stderr = process.stderr.read() if process.stderr else ""
    assert "poll cancelled target=" in stderr  # it was mid-poll
    assert '"level": "info"' in stderr and "Traceback" not in stderr
    assert TOKEN not in stderr


def test_serve_starts_with_the_api_down_and_becomes_ready_when_it_comes_up() -> None:
    """Nothing listens where the API should be: the exporter still serves (/healthz 200,
    /metrics with up 0 and the connection errors counted, /readyz 503), and turns ready after
    the first poll that reaches the API once it is there."""
    port, api_port = free_port(), free_port()
    env = sim_env(f"http://127.0.0.1:{api_port}", "simproject") | {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "0.5",
        "MODELARTS_EXPORTER_MAX_RETRIES": "0",
    }
    url = f"http://127.0.0.1:{port}"
    with background(["serve"], env) as process:
        assert wait_for(f"{url}/healthz", 200), process
        deadline = time.monotonic() + 10
        samples = parse_samples(httpx.get(f"{url}/metrics").text)
        while select(samples, "modelarts_exporter_poll_errors_total", reason="connection") < 2:
            assert time.monotonic() < deadline, "no failed poll counted"
            time.sleep(0.1)
            samples = parse_samples(httpx.get(f"{url}/metrics").text)
        assert select(samples, "modelarts_exporter_up") == 0
        assert select(samples, "modelarts_training_job_versions") == 0  # nothing made up
        assert httpx.get(f"{url}/readyz").status_code == 503

        tenant = Tenant(size=120, seed=3)
        with SimulatorServer(tenant, port=api_port, tokens=[TOKEN]):
            assert wait_for(f"{url}/readyz", 200, timeout=10)
            samples = parse_samples(httpx.get(f"{url}/metrics").text)
            assert select(samples, "modelarts_exporter_up") == 1
            assert select(samples, "modelarts_training_job_versions") == len(tenant.records())
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


def _last_success(exposition: str) -> float:
    return select(parse_samples(exposition), "modelarts_exporter_last_success_timestamp_seconds")


def _fast_demo(port: int, *more: str) -> list[str]:
    """The demo polling every second a tenant 600 times busier than a real one."""
    return [
        "demo",
        "--listen-address",
        f"127.0.0.1:{port}",
        "--poll-interval-seconds",
        "1",
        "--speed",
        "600",
        *more,
    ]


def test_demo_shows_changing_metrics_within_one_poll_interval() -> None:
    port = free_port()
    with background(_fast_demo(port), {}) as process:
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200), process
        first = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        second = first

        def polled_again() -> bool:
            nonlocal second
            second = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            return _last_success(second) > _last_success(first)

        assert eventually(polled_again), "no poll after the first one"
        assert select(parse_samples(first), "modelarts_exporter_up") == 1
        versions = "modelarts_training_job_versions"
        changed = [
            key
            for key, value in parse_samples(second).items()
            if key[0].startswith(versions) and parse_samples(first).get(key) != value
        ]
        assert changed, "the demo tenant should evolve between polls"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_demo_ages_are_real_and_listings_are_read_between_changes() -> None:
    """The demo tenant evolves 600 times faster than a real project, yet keeps the wall clock's
    time (the exporter's ages are not 0) and changes between polls, not under every listing."""
    port = free_port()
    polls = 6
    with background(_fast_demo(port, "--api-version", "v1"), {}) as process:
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200), process
        exposition = ""

        def polled() -> bool:
            nonlocal exposition
            exposition = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            count = "modelarts_exporter_poll_duration_seconds_count"
            return select(parse_samples(exposition), count) >= polls

        assert eventually(polled, timeout=60), "the demo did not poll often enough"
        samples = parse_samples(exposition)
        oldest = {
            phase: select(samples, "modelarts_training_job_oldest_seconds", phase=phase)
            for phase in ("pending", "running")
        }
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        log = process.stderr.read()
    assert min(oldest.values()) > 0, oldest
    moved = log.count("listing moved while it was read")
    assert moved <= polls // 3, log


def test_a_mistyped_command_is_named_with_the_closest_one() -> None:
    result = run_cli("chek-config")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "modelarts-exporter: unknown command 'chek-config': did you mean 'check-config'?"
    )


def test_a_first_argument_far_from_any_command_is_not_echoed() -> None:
    result = run_cli("zq81-not-a-command-x7")
    assert result.returncode == 2
    assert "zq81" not in result.stderr
    assert "unknown command (not shown); the commands are serve, once" in result.stderr


@pytest.mark.parametrize("command", ["serve", "demo", "simulate"])
def test_a_listen_address_in_use_or_not_resolving_is_one_line_naming_it(command: str) -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
    }

    def run(address: str) -> str:
        flag = ["--listen-address", address] if command != "serve" else []
        result = run_cli(command, *flag, env=env | {"MODELARTS_EXPORTER_LISTEN_ADDRESS": address})
        assert result.returncode == 1 and "Traceback" not in result.stderr
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("modelarts-exporter: "), result.stderr
        return last.removeprefix("modelarts-exporter: ")

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        in_use = run(f"127.0.0.1:{port}")
    assert in_use == f"cannot listen on 127.0.0.1:{port}: address already in use"
    unknown = run("no-such-host.invalid:9878")
    assert unknown.startswith(
        "cannot listen on no-such-host.invalid:9878: the host 'no-such-host.invalid' does not resolve"
    ), unknown


@pytest.mark.parametrize("command", ["check-config", "once", "serve"])
def test_no_credentials_at_all_is_an_error_naming_the_ways_to_give_them(command: str) -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    result = run_cli(command, env=env)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(
        "modelarts-exporter: configuration error: no credentials: set ACCESS_KEY"
    )
    for way in ("AUTH_TOKEN", "USERNAME+PASSWORD+DOMAIN_NAME", "HUAWEICLOUD_SDK_AK", "OS_CLOUD"):
        assert way in line
    assert "configuration is valid" not in result.stderr


def _idle_shard_env() -> tuple[dict[str, str], int]:
    """One target and two shards: the environment of the shard that polls nothing."""
    idle = 1 - shard_of("p1", 2)
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
        "MODELARTS_EXPORTER_TOTAL_SHARDS": "2",
        "MODELARTS_EXPORTER_SHARD": str(idle),
    }
    return env, idle


def test_a_shard_without_targets_is_ready_and_warned_about_once() -> None:
    env, idle = _idle_shard_env()
    port = free_port()
    env["MODELARTS_EXPORTER_LISTEN_ADDRESS"] = f"127.0.0.1:{port}"
    with background(["serve"], env) as process:
        assert wait_for(f"http://127.0.0.1:{port}/readyz", 200), process
        answer = httpx.get(f"http://127.0.0.1:{port}/readyz")
        assert answer.text == f"ready: no targets for shard {idle} of 2\n"
        process.send_signal(signal.SIGTERM)  # the warning came before the server started
        process.wait(timeout=10)
        assert process.stderr is not None
        warnings = [line for line in process.stderr.read().splitlines() if "WARNING" in line]
    assert len(warnings) == 1, warnings
    assert f"shard {idle} of 2 polls none of the 1 target(s)" in warnings[0]


def test_check_config_warns_about_a_shard_without_targets() -> None:
    env, idle = _idle_shard_env()
    result = run_cli("check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert f"targets polled by shard {idle} of 2:\n  (none)" in result.stdout
    warning, valid = result.stderr.splitlines()
    assert warning.startswith(f"modelarts-exporter: warning: shard {idle} of 2 polls none of the 1")
    assert valid == "configuration is valid"


@pytest.mark.parametrize("command", ["check-config", "once"])
def test_a_mistyped_variable_is_warned_about_once_without_its_value(command: str) -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
        "MODELARTS_EXPORTER_MAX_RETRIES": "0",
        "MODELARTS_EXPORTER_SECRT_KEY": SECRET_KEY,
    }
    result = run_cli(command, env=env)
    warnings = [line for line in result.stderr.splitlines() if "SECRT_KEY" in line]
    assert len(warnings) == 1, result.stderr
    assert "did you mean MODELARTS_EXPORTER_SECRET_KEY?" in warnings[0]
    assert SECRET_KEY not in result.stderr


def test_serve_warns_about_a_mistyped_variable_once() -> None:
    port = free_port()
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": f"http://127.0.0.1:{free_port()}",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVL_SECONDS": "5",
    }
    with background(["serve"], env) as process:
        # Warned before the server starts: once it answers, the line is written.
        assert wait_for(f"http://127.0.0.1:{port}/healthz", 200), process
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert process.stderr is not None
        stderr = process.stderr.read()
    warnings = [line for line in stderr.splitlines() if "POLL_INTERVL_SECONDS" in line]
    assert len(warnings) == 1, stderr
    assert "did you mean MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS?" in warnings[0]


def test_simulate_help_lists_the_fault_options_with_what_each_does() -> None:
    result = run_cli("simulate", "--help")
    assert result.returncode == 0, result.stderr
    for option in ("--fault KIND", "--fault-probability P", "--latency-seconds SECONDS"):
        assert option in result.stdout
    for kind, text in FAULT_HELP.items():
        assert f"    {kind:<19} {text}" in result.stdout


def test_simulate_injects_the_faults_asked_for() -> None:
    port = free_port()
    args = ["simulate", "--listen-address", f"127.0.0.1:{port}", "--size", "10"]
    with background([*args, "--fault", "server_error", "--fault-probability", "1"], {}) as process:
        url = f"http://127.0.0.1:{port}/v1/demo-project/training-jobs/versions"
        assert eventually(lambda: _status_of(url) == 500), process


def _status_of(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.TransportError:
        return None


def test_serve_help_shows_meaningful_metavars_and_warns_about_secret_flags() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0, result.stderr
    assert "SecretStr" not in result.stdout and " Path" not in result.stdout
    for flag in ("--auth-token TOKEN", "--secret-key SECRET", "--password PASSWORD"):
        assert flag in result.stdout
    assert "--config-file FILE" in result.stdout and "--password-file FILE" in result.stdout
    text = " ".join(result.stdout.split())
    for secret in ("AUTH_TOKEN", "SECRET_KEY", "SECURITY_TOKEN", "PASSWORD"):
        assert f"visible to every local user in ps: prefer {secret}_FILE or the environment" in text


def test_check_config_warns_that_v1_names_no_user() -> None:
    env = {
        "MODELARTS_EXPORTER_ENDPOINT": "https://modelarts.example",
        "MODELARTS_EXPORTER_PROJECT_ID": "p1",
        "MODELARTS_EXPORTER_AUTH_TOKEN": TOKEN,
        "MODELARTS_EXPORTER_USER_METRICS": "true",
    }
    v1 = run_cli("check-config", env=env)
    assert v1.returncode == 0, v1.stderr
    warning, valid = v1.stderr.splitlines()
    assert warning == (
        "modelarts-exporter: warning: p1: USER_METRICS with API_VERSION=v1: the v1 API names no "
        "user, every version counts as user _none"
    )
    assert valid == "configuration is valid"
    v2 = run_cli("check-config", env={**env, "MODELARTS_EXPORTER_API_VERSION": "v2"})
    assert v2.returncode == 0 and v2.stderr == "configuration is valid\n", v2.stderr
