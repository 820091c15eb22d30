"""requirements.lock: the runtime dependencies pinned with hashes, exactly pyproject's closure,
installed here (make test) and in the image from the same file."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from support.deploy import stages

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements.lock"
REGENERATE = "regenerate requirements.lock as CONTRIBUTING.md says"


def locked() -> dict[str, str]:
    """Name to pinned version; every entry must carry hashes."""
    entries: dict[str, list[str]] = {}
    current: list[str] = []
    for line in LOCK.read_text().splitlines():
        if re.match(r"[A-Za-z0-9]", line):
            current = entries.setdefault(line, [])
        elif line.strip().startswith("--hash=sha256:"):
            current.append(line)
    pins = {}
    for head, hashes in entries.items():
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+) \\", head)
        assert match, f"not a pin: {head}"
        assert hashes, f"no hash for {head}"
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def runtime_closure() -> dict[str, str]:
    """pyproject's runtime dependencies and theirs, as installed (name to version), following
    only requirements whose markers hold here (Python 3.11 on Linux, as in the image)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [(Requirement(text), "") for text in project["dependencies"]]
    found: dict[str, str] = {}
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        try:
            version = distribution(name).version
        except PackageNotFoundError:
            raise AssertionError(f"{name} is required but not installed: {REGENERATE}") from None
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{name} {version} does not satisfy {requirement}: {REGENERATE}"
        )
        if name in found:
            continue
        found[name] = version
        for text in distribution(name).requires or []:
            todo += [(Requirement(text), wanted) for wanted in ("", *requirement.extras)]
    return found


def test_the_lock_is_exactly_the_runtime_closure_with_hashes() -> None:
    pins, closure = locked(), runtime_closure()
    assert set(pins) == set(closure), (
        f"missing from the lock: {sorted(set(closure) - set(pins))}, "
        f"not needed: {sorted(set(pins) - set(closure))}; {REGENERATE}"
    )
    assert pins == closure, f"installed versions differ from the lock; {REGENERATE}"


def test_the_lock_says_how_it_was_made() -> None:
    header = "".join(line for line in LOCK.read_text().splitlines() if line.startswith("#"))
    assert "pip-compile --generate-hashes" in header and "pyproject.toml" in header
    assert "--index-url" not in LOCK.read_text() and "--find-links" not in LOCK.read_text()


def test_the_image_installs_the_lock_and_then_only_the_wheel() -> None:
    build, final = stages()
    (fetch,) = build.all("RUN")
    assert (
        "pip download --require-hashes --only-binary=:all: --dest /wheels -r requirements.lock"
        in fetch
    )
    assert "pip wheel --no-deps --wheel-dir /wheels ." in fetch
    (install,) = final.all("RUN")
    steps = install.split(" && ")
    lock_step = next(i for i, step in enumerate(steps) if "-r /wheels/requirements.lock" in step)
    wheel_step = next(i for i, step in enumerate(steps) if "modelarts_exporter-*.whl" in step)
    assert lock_step < wheel_step
    assert "--no-index" in steps[lock_step] and "--require-hashes" in steps[lock_step]
    assert "--no-index --no-deps" in steps[wheel_step]
