"""The Dockerfile: hadolint-clean, a wheel-only final stage that runs as a numeric non-root user,
and a health check that works without curl."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from deploy_helpers import DOCKERFILE, REPO, free_port, run, tool


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


def healthcheck_command() -> list[str]:
    (healthcheck,) = stages()[-1].all("HEALTHCHECK")
    _, _, command = healthcheck.partition(" CMD ")
    parsed: list[str] = json.loads(command)
    return parsed


class _Healthz(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def healthz_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_healthcheck_asks_healthz_with_python_only() -> None:
    command = healthcheck_command()
    assert command[:2] == ["python", "-c"]
    python = [sys.executable, *command[1:]]

    def check(listen_address: str) -> int:
        env = {**os.environ, "MODELARTS_EXPORTER_LISTEN_ADDRESS": listen_address}
        return subprocess.run(
            python, env=env, capture_output=True, timeout=30, check=False
        ).returncode

    with healthz_server() as port:
        assert check(f"0.0.0.0:{port}") == 0
    assert check(f"0.0.0.0:{free_port()}") != 0
