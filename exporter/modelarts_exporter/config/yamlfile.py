"""Reading the YAML files an operator writes (the targets file, the web configuration).

Whatever the bytes, the answer is a document or one line naming the file and the problem: a
file that cannot be read, is not UTF-8, is not YAML (with the line), or nests so deeply that
the parser would exhaust the stack.
"""

from __future__ import annotations

from pathlib import Path


class YamlFileError(ValueError):
    """``str()`` is one line: the file's path, then what is wrong with it."""


def load_yaml(path: Path) -> object:
    """The document in ``path`` (``None`` for an empty file)."""
    import yaml  # noqa: PLC0415 - here, not at the top: most starts read no YAML (~25 ms)

    try:
        data = path.read_bytes()
    except OSError as error:
        raise YamlFileError(f"{path}: cannot read ({error.strerror or error})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise YamlFileError(f"{path}: not UTF-8 text (byte {error.start})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "syntax error"
        raise YamlFileError(f"{path}: not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise YamlFileError(f"{path}: not valid YAML: nested too deeply") from None
