#!/usr/bin/env python3
"""Write the settings reference of docs/configuration.md from the settings models.

The part of the file above the marker line is written by hand and kept as it is; everything below
it is generated from the fields of ``modelarts_exporter.config.settings`` — their descriptions,
types, bounds and defaults — and from the region table of ``modelarts_exporter.config.endpoints``.
To change a setting's text, edit its ``Field(description=...)`` and run this script with the
project's venv: ``.venv/bin/python scripts/config-doc.py``.

``--check`` writes nothing and exits 1, with one line saying what to run, when the file is not
what would be written; ``tests/test_configuration_doc.py`` makes the same comparison.
``--stdout`` prints the whole file instead of writing it.
"""

from __future__ import annotations

import argparse
import re
import sys
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from modelarts_exporter.config.endpoints import PRESETS
from modelarts_exporter.config.settings import Settings
from modelarts_exporter.config.target import TargetOptions, TargetSettings
from modelarts_exporter.config.target_fields import ENV_PREFIX, SECRET_FIELDS

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "configuration.md"
MARKER = (
    "<!-- Generated below by scripts/config-doc.py from the settings' descriptions: edit those "
    "(exporter/modelarts_exporter/config/settings.py) and run the script, not this text. -->"
)
REGENERATE = ".venv/bin/python scripts/config-doc.py"

# Per-target settings in groups, each named by its first field in declaration order (as the
# comments in settings.py group them): a field added to the model lands in the group it follows.
TARGET_GROUPS = {
    "cloud": "Where and what",
    "username": "Credential settings",
    "auth_token_file": "Secrets from files",
    "poll_interval_seconds": "Polling",
    "status": "Filters of the listing",
    "poll_mode": "Incremental polling",
}
PROCESS_GROUPS = {
    "config_file": "Targets and shards",
    "listen_address": "Serving",
    "log_level": "Logging",
}


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(field: FieldInfo) -> str:
    """ ", 1 to 1000", ", above 0", ... from the field's constraints."""
    found = {type(item).__name__: item for item in field.metadata}
    ge, gt, le = (getattr(found.get(kind), kind.lower(), None) for kind in ("Ge", "Gt", "Le"))
    if ge is not None and le is not None:
        return f", {_number(ge)} to {_number(le)}"
    words = (("at least", ge), ("above", gt), ("at most", le))
    return "".join(f", {word} {_number(value)}" for word, value in words if value is not None)


def _kind(field: FieldInfo) -> str:
    """The value a setting takes, as a reader needs it (allowed values, bounds)."""
    annotation: Any = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = (arg for arg in get_args(annotation) if arg is not type(None))
    # The metavar aliases of --help (TOKEN, FILE, ...) stand for their types.
    annotation = getattr(annotation, "__value__", annotation)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{value}`" for value in get_args(annotation))
    if annotation is bool:
        return "`true` or `false`"
    if annotation is int:
        return "integer" + _bounds(field)
    if annotation is float:
        return "number" + _bounds(field)
    if annotation is SecretStr:
        return "secret text"
    if annotation is Path:
        return "file path"
    if get_origin(annotation) is tuple:
        return "comma-separated list"
    if annotation is str:
        return "text"
    raise TypeError(f"{annotation!r}: teach scripts/config-doc.py how to show this type")


def _default(field: FieldInfo) -> str:
    value = field.default
    if value is None or value == ():
        return "not set"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{_number(value)}`"


def _flag(name: str, field: FieldInfo) -> str:
    flag = "--" + name.replace("_", "-")
    return f"`{flag}` / `--no-{flag[2:]}`" if field.annotation is bool else f"`{flag}`"


def _linked(text: str) -> str:
    """Backticks around URLs, links for the files of docs/ that a description names: the
    descriptions themselves stay plain text, as --help shows them."""
    text = re.sub(r"(https?://[^\s;,)]+)", r"`\1`", text)
    return re.sub(r"\bdocs/([\w.-]+\.(?:md|yaml))", r"[docs/\1](\1)", text)


def _entry(name: str, field: FieldInfo, file_key: bool) -> list[str]:
    if not field.description:
        raise ValueError(f"{name}: no description; give its Field(...) one in settings.py")
    facts = [_flag(name, field)]
    if file_key:
        facts.append(f"file key `{name}`")
    facts += [_kind(field), f"default {_default(field)}"]
    if name in SECRET_FIELDS:
        facts.append(f"or from a file: `{ENV_PREFIX}{name.upper()}_FILE`")
    return [
        f"#### `{ENV_PREFIX}{name.upper()}`",
        "",
        " · ".join(facts),
        "",
        _linked(field.description),
        "",
    ]


def _section(fields: dict[str, FieldInfo], groups: dict[str, str], file_key: bool) -> list[str]:
    if next(iter(fields)) not in groups:
        raise ValueError(f"{next(iter(fields))}: the first field must start a group")
    lines: list[str] = []
    for name, field in fields.items():
        if name in groups:
            lines += [f"### {groups[name]}", ""]
        lines += _entry(name, field, file_key)
    return lines


def _regions() -> list[str]:
    lines = [
        "## Regions",
        "",
        "`CLOUD` and `REGION` set `ENDPOINT` and `IAM_ENDPOINT` from this table; "
        "for any other region set both explicitly.",
        "",
        "| `CLOUD` | `REGION` | ModelArts endpoint | IAM endpoint |",
        "|---|---|---|---|",
    ]
    for cloud, regions in PRESETS.items():
        for region, endpoints in sorted(regions.items()):
            row = f"| `{cloud}` | `{region}` | `{endpoints.modelarts}` | `{endpoints.iam}` |"
            lines.append(row)
    return [*lines, ""]


def generated() -> str:
    """The reference below the marker."""
    per_target = dict(TargetOptions.model_fields)
    process = {k: v for k, v in Settings.model_fields.items() if k not in per_target}
    name = TargetSettings.model_fields["name"]
    lines = [
        "## Process-wide settings",
        "",
        "Environment variables and flags only: a targets file cannot set them.",
        "",
        *_section(process, PROCESS_GROUPS, file_key=False),
        "## Per-target settings",
        "",
        "As variables and flags they configure the single target, or, with a targets file, "
        "are the defaults of its every target; a target of the file sets them under the file "
        "key (the name in lower case), and has a name:",
        "",
        "#### `name` (targets file only)",
        "",
        " · ".join(["file key `name`", _kind(name)]),
        "",
        _linked(name.description or ""),
        "",
        *_section(per_target, TARGET_GROUPS, file_key=True),
        *_regions(),
    ]
    return "\n".join(lines)


def _shown(path: Path) -> Path:
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def expected(path: Path) -> str:
    """The whole file as it must be: its own hand-written part up to the marker, then the
    generated one."""
    head, found, _ = path.read_text(encoding="utf-8").partition(MARKER + "\n")
    if not found:
        raise SystemExit(
            f"{_shown(path)}: no marker line (the script keeps what is above it):\n{MARKER}"
        )
    return f"{head}{found}\n{generated()}"


def drift(path: Path) -> str | None:
    """One line naming the first difference and what to run, or None when the file is current."""
    current, wanted = path.read_text(encoding="utf-8"), expected(path)
    if current == wanted:
        return None
    pairs = zip(current.splitlines(keepends=True), wanted.splitlines(keepends=True), strict=False)
    line = next((i for i, (have, want) in enumerate(pairs) if have != want), None)
    if line is None:
        line = min(current.count("\n"), wanted.count("\n"))
    return f"{_shown(path)} is out of date from line {line + 1} on: run {REGENERATE}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="write nothing, exit 1 on drift")
    action.add_argument("--stdout", action="store_true", help="print the file, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problem = drift(DOC)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        return 0
    text = expected(DOC)
    if args.stdout:
        sys.stdout.write(text)
    else:
        DOC.write_text(text, encoding="utf-8")
        print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
