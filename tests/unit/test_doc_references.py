"""Every test the documentation names (``test_x.py::test_name``, in docs/ and the READMEs)
exists: the reliability table and the performance notes point at tests as evidence, and a test
renamed or moved must not leave them pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
DOCS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", REPO / "CONTRIBUTING.md"]
REFERENCE = re.compile(r"\b([\w/]*test_\w+\.py)::(test_\w+)")


def _defined(reference: str, name: str) -> bool:
    """Whether a test file whose path ends with ``reference`` defines ``name``."""
    files = [f for f in TESTS.rglob("test_*.py") if f.as_posix().endswith("/" + reference)]
    pattern = re.compile(rf"^(async )?def {name}\(", re.M)
    return any(pattern.search(f.read_text()) for f in files)


def test_every_test_the_docs_name_exists() -> None:
    found = [
        (doc.relative_to(REPO).as_posix(), file, name)
        for doc in DOCS
        for file, name in REFERENCE.findall(doc.read_text())
    ]
    assert len(found) > 50  # the pattern still matches how the docs write references
    missing = sorted(
        {f"{doc}: {file}::{name}" for doc, file, name in found if not _defined(file, name)}
    )
    assert not missing, "\n".join(missing)
