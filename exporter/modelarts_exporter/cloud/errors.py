"""Why a poll failed, as data.

Low layers raise :class:`PollError` with one :class:`Reason`; the poll job is the one place that
catches it, logs it once and counts it under ``modelarts_exporter_poll_errors_total{reason}``.
Messages are one line, name the cause, and never contain a secret.
"""

from __future__ import annotations

from enum import StrEnum

from modelarts_exporter.text import MAX_ERROR, one_line


class Reason(StrEnum):
    """The ``reason`` label values; a bounded set."""

    AUTH = "auth"
    THROTTLED = "throttled"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    INVALID_RESPONSE = "invalid_response"
    API_ERROR = "api_error"

    @property
    def transient(self) -> bool:
        """Worth retrying within the same poll."""
        return self in _TRANSIENT


_TRANSIENT = frozenset({Reason.THROTTLED, Reason.TIMEOUT, Reason.CONNECTION, Reason.SERVER_ERROR})


class PollError(Exception):
    """A poll cannot complete; ``reason`` is the category, ``str()`` the one-line cause.

    The message is made one printable line of at most :data:`~modelarts_exporter.text.MAX_ERROR`
    characters here, whatever API text it quotes, so no log line, page or output that shows it
    can be split or forged by the API."""

    def __init__(self, reason: Reason, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(one_line(message, MAX_ERROR))
        self.reason = reason
        self.retry_after = retry_after
        """Seconds the server asked us to wait (``Retry-After``), if it said."""
        self.status: int | None = None
        """The HTTP status of the answer, where a caller tells a 403 or 404 apart (pools)."""
        self.code: str | None = None
        """The answer's error code (``ModelArts.…``, ``APIG.…``), where a caller needs it."""

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.args[0]}"
