"""docs/metrics.md and metrics.py list the same metrics with the same types and labels."""

from __future__ import annotations

import re
from pathlib import Path

from modelarts_exporter.expose import metrics

DOC = Path(__file__).parents[3] / "docs" / "metrics.md"
ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<kind>\w+) \| (?P<labels>[^|]*) \|", re.MULTILINE)


def test_doc_table_matches_declarations() -> None:
    documented = {
        match["name"]: (match["kind"], tuple(re.findall(r"`(\w+)`", match["labels"])))
        for match in ROW.finditer(DOC.read_text())
        if match["name"].startswith("modelarts_")
    }
    declared = {spec.name: (spec.kind, spec.labels) for spec in metrics.ALL}
    assert documented == declared


def test_names_follow_conventions() -> None:
    for spec in metrics.ALL:
        assert spec.name.startswith("modelarts_")
        assert (spec.kind == "counter") == spec.name.endswith("_total")
        assert (spec.kind == "info") == spec.name.endswith("_info")
        assert len({s.name for s in metrics.ALL}) == len(metrics.ALL)
