"""docs/metrics.md and metrics.py list the same metrics with the same types and labels; and the
same process metrics as expose/processes.py gives."""

from __future__ import annotations

import os
import re
from pathlib import Path

from modelarts_exporter.expose import metrics
from modelarts_exporter.expose.processes import HTTP_NAMESPACE, process_registry

DOC = Path(__file__).parents[3] / "docs" / "metrics.md"
ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<kind>\w+) \| (?P<labels>[^|]*) \|", re.MULTILINE)


def test_doc_table_matches_declarations() -> None:
    documented = {
        match["name"]: (match["kind"], tuple(re.findall(r"`(\w+)`", match["labels"])))
        for match in ROW.finditer(DOC.read_text())
        if match["name"].startswith("modelarts_") and "_process_" not in match["name"]
    }
    declared = {spec.name: (spec.kind, spec.labels) for spec in metrics.ALL}
    assert documented == declared


def test_names_follow_conventions() -> None:
    for spec in metrics.ALL:
        assert spec.name.startswith("modelarts_")
        assert (spec.kind == "counter") == spec.name.endswith("_total")
        assert (spec.kind == "info") == spec.name.endswith("_info")
        assert len({s.name for s in metrics.ALL}) == len(metrics.ALL)


def test_doc_table_lists_the_process_metrics_both_processes_give() -> None:
    documented = {
        match["name"]: (match["kind"], match["labels"].strip())
        for match in ROW.finditer(DOC.read_text())
        if match["name"].startswith(("process_", f"{HTTP_NAMESPACE}_process_"))
    }
    given = {
        sample.name: (family.type, "(none)")
        for family in process_registry(os.getpid()).collect()
        for sample in family.samples
        if not sample.labels
    }
    assert documented == given
    assert len(given) == 12  # six each: none missing where /proc is
