"""`modelarts-exporter once` against the simulator prints an exposition that promtool accepts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from support.processes import run_cli, sim_env
from support.secrets import TOKEN
from support.simulation import SimFactory, parse_samples, select

PROMTOOL = shutil.which("promtool")


def test_once_prints_an_exposition_promtool_accepts(simulator: SimFactory, tmp_path: Path) -> None:
    assert PROMTOOL, "promtool is installed by the test command (Debian package prometheus)"
    sim = simulator(size=3000)
    result = run_cli("once", "--page-size", "500", env=sim_env(sim.url, sim.project_id))
    assert result.returncode == 0, result.stderr
    samples = parse_samples(result.stdout)
    assert select(samples, "modelarts_exporter_up") == 1
    assert select(samples, "modelarts_training_job_versions") == len(sim.tenant.records_in("0"))
    check = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=result.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert TOKEN not in result.stdout + result.stderr
