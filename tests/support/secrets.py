"""The test secrets, and the watch that fails a test after which one of them was shown.

Every secret a test configures comes from here. :data:`WATCH` sees every log record that reaches
the root logger; :func:`note_output` is told what else a user could see (a command's output, an
unhandled exception). What they find waits in :data:`leaks` until conftest.py's
``_secrets_never_leak`` fails the test with it.
"""

from __future__ import annotations

import logging
import traceback

TOKEN = "test-token-0f3c9a7e"
WRONG_TOKEN = "wrong-token-7d1e5b"
SECRET_KEY = "SK-TEST-secret-91b2"
WRONG_SECRET_KEY = "SK-wrong-3f0c"
SECURITY_TOKEN = "st-security-55aa"
BASIC_AUTH_PASSWORD = "scrape-password-5c1d"
NEW_BASIC_AUTH_PASSWORD = "rotated-password-8e2f"
TEST_SECRETS = (
    TOKEN,
    WRONG_TOKEN,
    SECRET_KEY,
    WRONG_SECRET_KEY,
    SECURITY_TOKEN,
    BASIC_AUTH_PASSWORD,
    NEW_BASIC_AUTH_PASSWORD,
)
leaks: list[str] = []
"""Where each secret was seen since the last test ended (only its start is shown)."""


def note_output(text: str, where: str) -> None:
    """Record a leak if ``text`` (something a user could see) holds a test secret."""
    for secret in TEST_SECRETS:
        if secret in text:
            at = text.index(secret)
            context = text[max(0, at - 60) : at].replace("\n", " ")
            leaks.append(f"{where}: ...{context}<{secret[:4]}…>")


class SecretWatch(logging.Handler):
    """Sees every record that reaches the root logger, before any redaction a handler applies:
    a secret in a raw record is a leak wherever the logs end up."""

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        note_output(text + (record.exc_text or ""), f"log record of {record.name}")


WATCH = SecretWatch(logging.DEBUG)
