"""The Dockerfile: hadolint-clean, a wheel-only final stage that runs as a numeric non-root user,
and a health check that passes against a live exporter over HTTP, HTTPS and with client
certificates, and fails when none answers."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support.deploy import DOCKERFILE, REPO, run, stages, tool
from support.pki import Pki, write_config
from support.processes import background, free_port, sim_env
from support.secrets import note_output
from support.simulation import SimFactory
from support.waiting import wait_for


def test_hadolint_is_clean() -> None:
    result = run([tool("hadolint"), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)])
    assert result.stdout.strip() == ""


def test_final_stage_runs_as_numeric_non_root_user() -> None:
    users = stages()[-1].all("USER")
    assert users, "the final stage must set USER"
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]), (
        f"USER {users[-1]} is not a numeric non-root id"
    )


def test_final_stage_installs_only_the_wheel() -> None:
    build, final = stages()[0], stages()[-1]
    assert len(stages()) == 2
    assert build.name is not None
    assert any(re.search(r"\bpip wheel\b|\bpython -m build\b", run) for run in build.all("RUN"))
    assert final.all("COPY") == [] and final.all("ADD") == [], "nothing from the build context"
    (install,) = final.all("RUN")
    assert f"--mount=type=bind,from={build.name},source=/wheels,target=/wheels" in install
    assert (
        "--no-index --find-links=/wheels --require-hashes -r /wheels/requirements.lock" in install
    )
    assert "--no-index --no-deps /wheels/modelarts_exporter-*.whl" in install
    assert not re.search(r"apt-get|pip install (-e )?\.|/src", install)


def test_venv_goes_on_path_only_after_the_install() -> None:
    """Before it, `python -m pip` in the install step would be the venv's python, without pip
    (found by building the image: scripts/image-test.sh)."""
    instructions = stages()[-1].instructions
    install = next(i for i, (kind, _) in enumerate(instructions) if kind == "RUN")
    path = next(
        i for i, (kind, args) in enumerate(instructions) if kind == "ENV" and "PATH=" in args
    )
    assert install < path


def test_final_stage_is_read_only_friendly_and_documented() -> None:
    final = stages()[-1]
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PATH=/opt/venv/bin:$PATH" in env
    assert final.all("EXPOSE") == ["9878"]
    assert [json.loads(args) for args in final.all("ENTRYPOINT")] == [["modelarts-exporter"]]
    assert [json.loads(args) for args in final.all("CMD")] == [["serve"]]
    labels = " ".join(final.all("LABEL"))
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_sends_only_what_builds_the_wheel() -> None:
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    assert {line for line in lines if line.startswith("!")} == {
        "!pyproject.toml",
        "!requirements.lock",
        "!README.md",
        "!exporter/",
    }


def healthcheck() -> tuple[str, list[str]]:
    """The final stage's HEALTHCHECK: its options and its command."""
    (instruction,) = stages()[-1].all("HEALTHCHECK")
    options, _, command = instruction.partition(" CMD ")
    parsed: list[str] = json.loads(command)
    return options, parsed


def run_healthcheck(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The image's HEALTHCHECK command as the container runs it: ``modelarts-exporter`` is the
    console script of the venv on PATH (/opt/venv/bin there, this venv's here)."""
    _, command = healthcheck()
    assert command[0] == "modelarts-exporter"
    result = subprocess.run(
        [str(Path(sys.executable).parent / command[0]), *command[1:]],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    note_output(result.stdout + result.stderr, "the image's HEALTHCHECK")
    return result


def test_healthcheck_is_the_exporters_own_command() -> None:
    """No interpreter one-liner: the command knows the web config (HTTPS, client certificates)."""
    options, command = healthcheck()
    assert command == ["modelarts-exporter", "healthcheck"]
    assert options == "--interval=30s --timeout=5s --start-period=15s --retries=3"


@contextmanager
def exporter_serving(
    simulator: SimFactory, web_config: Path | None, client: ssl.SSLContext | None
) -> Iterator[int]:
    """``modelarts-exporter serve`` on 127.0.0.1, answering /healthz to ``client``, until the
    block ends; its port."""
    sim = simulator(size=50)
    port = free_port()
    env = {
        **sim_env(sim.url, sim.project_id),
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
    }
    if web_config is not None:
        env["MODELARTS_EXPORTER_WEB_CONFIG_FILE"] = str(web_config)
    scheme = "https" if client else "http"
    with background(["serve"], env) as process:
        verify = client or True
        assert wait_for(f"{scheme}://127.0.0.1:{port}/healthz", 200, verify=verify), process.poll()
        yield port


def image_env(port: int, web_config: Path | None = None) -> dict[str, str]:
    """What the container's environment holds: the listen address as the image users set it
    (all interfaces, asked on loopback), the web config when there is one, and no target."""
    env = {"MODELARTS_EXPORTER_LISTEN_ADDRESS": f"0.0.0.0:{port}"}
    if web_config is not None:
        env["MODELARTS_EXPORTER_WEB_CONFIG_FILE"] = str(web_config)
    return env


TLS = {"cert_file": "server.pem", "key_file": "server.key"}
MTLS = {**TLS, "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "ca.pem"}


def test_healthcheck_asks_healthz_over_http(simulator: SimFactory) -> None:
    with exporter_serving(simulator, None, None) as port:
        result = run_healthcheck(image_env(port))
    assert (result.returncode, result.stderr) == (0, "")
    assert f"http://127.0.0.1:{port}/healthz answered HTTP 200" in result.stdout


def test_healthcheck_asks_healthz_over_https_where_plain_http_fails(
    simulator: SimFactory, pki: Pki
) -> None:
    """The check this command replaced asked over plain HTTP, and failed once TLS was on."""
    web_config = write_config(pki.directory, {"tls_server_config": TLS})
    with exporter_serving(
        simulator, web_config, pki.client_context(with_certificate=False)
    ) as port:
        result = run_healthcheck(image_env(port, web_config))
        plain = run_healthcheck(image_env(port))
    assert (result.returncode, result.stderr) == (0, "")
    assert f"https://127.0.0.1:{port}/healthz answered HTTP 200" in result.stdout
    assert plain.returncode == 1
    assert plain.stderr.startswith(f"modelarts-exporter: unhealthy: http://127.0.0.1:{port}/")
    assert plain.stderr.count("\n") == 1


def test_healthcheck_connects_when_client_certificates_are_required(
    simulator: SimFactory, pki: Pki
) -> None:
    web_config = write_config(pki.directory, {"tls_server_config": MTLS})
    with exporter_serving(simulator, web_config, pki.client_context()) as port:
        result = run_healthcheck(image_env(port, web_config))
    assert (result.returncode, result.stderr) == (0, "")
    assert f"tcp 127.0.0.1:{port} accepted a connection" in result.stdout


@pytest.mark.parametrize("tls", [None, TLS, MTLS], ids=["http", "https", "client-certificates"])
def test_healthcheck_fails_in_one_line_when_nothing_listens(
    pki: Pki, tls: dict[str, str] | None
) -> None:
    web_config = None if tls is None else write_config(pki.directory, {"tls_server_config": tls})
    result = run_healthcheck(image_env(free_port(), web_config))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("modelarts-exporter: unhealthy: ")
    assert result.stderr.count("\n") == 1
    assert "Connection refused" in result.stderr
