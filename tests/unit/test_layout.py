"""The package's tree is its data flow: every import runs down the arrow of docs/architecture.md.

config → cloud → listing → snapshot → expose → http → runtime → cli, over the foundation (``text``,
``logs``) that any layer may use. A module imports its own layer and the layers before it, never
one after it; the exporter never imports the simulator (only the command that starts it does).
"""

from __future__ import annotations

import ast
from pathlib import Path

import modelarts_exporter

PACKAGE = Path(modelarts_exporter.__file__).parent
ARROW = (
    "text",
    "logs",
    "config",
    "cloud",
    "listing",
    "snapshot",
    "expose",
    "http",
    "runtime",
    "cli",
)


def _layer(module: str) -> str:
    """``modelarts_exporter.cloud.client`` → ``cloud``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            if node.module == "modelarts_exporter":  # the package's own ``__version__``
                names = [name for name in names if not name.endswith(".__version__")]
            found += [
                (node.lineno, name) for name in names if name.startswith("modelarts_exporter.")
            ]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name)
                for a in node.names
                if a.name.startswith("modelarts_exporter.")
            ]
    return found


def _modules() -> list[tuple[str, Path]]:
    return [
        ("modelarts_exporter." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts), path)
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def test_every_import_runs_down_the_arrow() -> None:
    wrong = []
    for module, path in _modules():
        here = _layer(module)
        if here in ("simulator", "__init__", "__main__"):
            continue
        for line, imported in _imports(path):
            there = _layer(imported)
            if there == "simulator" and here == "cli":
                continue  # `simulate` and `demo` start it; imported there, lazily
            if there not in ARROW or ARROW.index(there) > ARROW.index(here):
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {imported}")
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


def test_the_simulator_uses_only_the_api_vocabulary() -> None:
    """It fakes the cloud: it may share the cloud layer's signing and status table, nothing
    that would let the exporter's own logic decide what the fake API answers."""
    wrong = [
        f"{path.relative_to(PACKAGE)}:{line} imports {imported}"
        for module, path in _modules()
        if _layer(module) == "simulator"
        for line, imported in _imports(path)
        if _layer(imported) not in ("simulator", "cloud")
    ]
    assert not wrong, "\n".join(wrong)


MAX_LINES = 350


def test_no_module_is_longer_than_one_job_needs() -> None:
    """Every module of the package, the simulator's included."""
    long = [
        f"{path.relative_to(PACKAGE)}: {n} lines"
        for _, path in _modules()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, "split these along the data flow:\n" + "\n".join(long)
