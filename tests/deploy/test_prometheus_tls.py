"""A real Prometheus scrapes ``serve`` through TLS, client certificates and basic auth, and a job
with the wrong password is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from support.pki import HASH, MTLS, USER, Pki, write_config
from support.processes import background, free_port, sim_env
from support.secrets import BASIC_AUTH_PASSWORD
from support.simulation import SimFactory, parse_samples, select
from support.waiting import wait_for

PASSWORD = BASIC_AUTH_PASSWORD


@pytest.mark.timeout(600)
def test_prometheus_scrapes_through_tls_client_certificates_and_basic_auth(
    pki: Pki, simulator: SimFactory, tmp_path: Path
) -> None:
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is installed by the test command (Debian package prometheus)"
    sim = simulator(size=200)
    config = write_config(
        pki.directory, {"tls_server_config": MTLS, "basic_auth_users": {USER: HASH}}
    )
    port, prometheus_port = free_port(), free_port()
    env = sim_env(sim.url, sim.project_id) | {
        "MODELARTS_EXPORTER_LISTEN_ADDRESS": f"127.0.0.1:{port}",
        "MODELARTS_EXPORTER_POLL_INTERVAL_SECONDS": "1",
        "MODELARTS_EXPORTER_WEB_CONFIG_FILE": str(config),
    }
    (tmp_path / "password").write_text(PASSWORD)
    tls = {
        "ca_file": str(pki.ca_file),
        "cert_file": str(pki.directory / "client.pem"),
        "key_file": str(pki.directory / "client.key"),
    }

    def job(name: str, password_file: Path) -> dict[str, object]:
        return {
            "job_name": name,
            "scheme": "https",
            "tls_config": tls,
            "basic_auth": {"username": USER, "password_file": str(password_file)},
            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
        }

    (tmp_path / "wrong").write_text("not-the-password")
    scrape = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            job("exporter", tmp_path / "password"),
            job("intruder", tmp_path / "wrong"),
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(scrape))
    with background(["serve"], env) as exporter:
        api = f"http://127.0.0.1:{prometheus_port}/api/v1"
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            health = _wait_for_targets(api, {"exporter", "intruder"})
            assert health["exporter"] == ("up", ""), health
            state, error = health["intruder"]
            assert state == "down" and "401" in error, health
            # up is 0 until the exporter's first poll has succeeded, which a busy machine delays.
            up = _query(api, 'modelarts_exporter_up{job="exporter"}', want=1.0)
            assert up == 1.0
        finally:
            server.terminate()
            server.wait(timeout=20)
        # The exporter was answering all along; its own view of it:
        metrics = httpx.get(
            f"https://127.0.0.1:{port}/metrics", verify=pki.client_context(), auth=(USER, PASSWORD)
        )
        assert select(parse_samples(metrics.text), "modelarts_exporter_up") == 1
        assert wait_for(f"http://127.0.0.1:{port}/healthz", 200, timeout=0.5) is False
        exporter.terminate()
        exporter.wait(timeout=10)
        log = exporter.stderr.read() if exporter.stderr else ""
    assert "tls=on with client certificates basic_auth_users=1" in log
    assert PASSWORD not in log


def _wait_for_targets(api: str, jobs: set[str], timeout: float = 40) -> dict[str, tuple[str, str]]:
    """Each job's (health, last error) once every job has been scraped at least once."""
    deadline = time.monotonic() + timeout
    health: dict[str, tuple[str, str]] = {}
    while time.monotonic() < deadline:
        try:
            targets = httpx.get(f"{api}/targets", timeout=2).json()["data"]["activeTargets"]
        except (httpx.TransportError, KeyError, ValueError):
            targets = []
        health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in targets}
        scraped = set(health) == jobs and all(s != "unknown" for s, _ in health.values())
        if scraped and health["exporter"][0] == "up":
            return health
        time.sleep(0.3)
    raise AssertionError(f"targets not scraped in time: {health}")


def _query(api: str, expression: str, want: float, timeout: float = 60) -> float:
    """The one sample of ``expression`` once it is ``want``, or the last one seen at the deadline:
    a target's health can be "up" a moment before the samples of that scrape are visible to
    queries, and a scraped value only changes at the next scrape."""
    deadline = time.monotonic() + timeout
    while True:
        result = httpx.get(f"{api}/query", params={"query": expression}, timeout=5).json()
        samples = result["data"]["result"]
        if len(samples) == 1 and float(samples[0]["value"][1]) == want:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.3)
    (sample,) = samples
    return float(sample["value"][1])
