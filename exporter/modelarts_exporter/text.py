"""Text from outside made fit for one log line or one error line.

Used by every layer (the cloud client for API messages, the configuration for validation
problems), so it depends on nothing of the exporter's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import ValidationError

MAX_MESSAGE = 200
MAX_ERROR = 400
"""The longest cause of a failed poll (``last_error``, the log line): a few messages of
:data:`MAX_MESSAGE` with their context."""

_ESCAPE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: ESC [ parameters final (colours, cursor moves)
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC (titles, links) to BEL or ST
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]"  # the other escapes (ESC c resets the terminal)
)
"""Terminal escape sequences, removed whole: a terminal reading a log would act on them."""
_SCAN = 8
"""How many times the limit of a text is looked at: an enormous text costs no more than that,
and what cleaning removes rarely leaves such a prefix shorter than the line."""

Location = tuple[int | str, ...]


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Outside text made safe for a log line, a page or a terminal: one line of printable
    characters, at most ``limit`` long (an ellipsis ends a cut one). Terminal escape sequences
    are removed; every other character that is not printable (line breaks, C0 and C1 controls,
    bidirectional overrides and other format characters, separators) becomes a space, and runs
    of spaces one."""
    if len(text) <= limit and text.isprintable() and "  " not in text:
        # Most text is already one clean line: printable means no escapes, no line breaks and no
        # space but " ", so only the ends can differ.
        return text.strip(" ")
    scanned = text[: limit * _SCAN]
    cleaned = _ESCAPE.sub("", scanned)
    printable = "".join(c if c.isprintable() else " " for c in cleaned)
    flat = " ".join(printable.split())
    if len(flat) <= limit and len(scanned) == len(text):
        return flat
    return flat[: limit - 1] + "…"


def dotted(location: Location) -> str:
    """Where a problem is, as a user writes it: ``targets.0.page_size``."""
    return ".".join(str(part) for part in location)


def validation_lines(
    error: ValidationError,
    name: Callable[[Location], str] = dotted,
    show_input: Callable[[Location], bool] = lambda location: False,
) -> list[str]:
    """One line per problem pydantic found: ``name(location): message``.

    The input is quoted only where ``show_input`` allows it (never for a secret) and only when
    pydantic's own message does not say it already (a validator's ``ValueError`` words its own).
    """
    lines = []
    for item in error.errors(include_url=False):
        location = tuple(item["loc"])
        where = name(location)
        message = item["msg"].removeprefix("Value error, ")
        if show_input(location) and item["type"] != "value_error":
            message += f" (got {item['input']!r})"
        lines.append(f"{where}: {message}" if where else message)
    return lines
