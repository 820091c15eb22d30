"""Text from outside made fit for one log line or one error line.

Used by every layer (the cloud client for API messages, the configuration for validation
problems), so it depends on nothing of the exporter's own.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

MAX_MESSAGE = 200

Location = tuple[int | str, ...]


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """Server-provided text made safe for a log line: one line, bounded length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


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
