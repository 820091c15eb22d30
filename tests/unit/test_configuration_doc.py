"""docs/configuration.md is what scripts/config-doc.py writes from the settings' fields."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.target import TargetSettings

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "config-doc.py"


def config_doc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doc_is_what_the_generator_writes() -> None:
    module = config_doc()
    assert module.drift(module.DOC) is None


def test_every_setting_has_a_description_and_a_section() -> None:
    doc = config_doc().DOC.read_text()
    for name, field in {**Settings.model_fields, **TargetSettings.model_fields}.items():
        assert field.description, name
        heading = (
            "`name` (targets file only)"
            if name == "name"
            else f"`MODELARTS_EXPORTER_{name.upper()}`"
        )
        assert f"#### {heading}\n" in doc


def test_a_stale_doc_is_one_line_saying_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = config_doc()
    stale = tmp_path / "configuration.md"
    stale.write_text(module.DOC.read_text().replace("default `60`", "default `30`"))
    (problem,) = module.drift(stale).splitlines()
    assert "out of date" in problem and "scripts/config-doc.py" in problem
    module.DOC = stale
    assert module.main(["--check"]) == 1
    assert capsys.readouterr().err == problem + "\n"
