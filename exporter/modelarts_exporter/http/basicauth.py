"""HTTP basic auth against bcrypt hashes, as exporter-toolkit checks ``basic_auth_users``.

A correct password costs one bcrypt verification (tens of milliseconds, one at a time so that a
flood of wrong ones cannot take every core); the result is remembered under a keyed hash of the
password, so every later scrape with it costs a SHA-256. Unknown users cost a bcrypt of the same
cost, so that timing does not tell which user names exist.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
from collections.abc import Mapping
from typing import NamedTuple

import bcrypt

BCRYPT_MAX_PASSWORD = 72
"""bcrypt reads at most this many bytes of a password."""


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes; thread-safe."""

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._bcrypt_lock = threading.Lock()
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[bytes, bytes]] = {}
        """User to (hash, keyed digest of the password that matched it): at most one entry per
        configured user, so the cache cannot grow."""
        # Unknown users are checked against a hash of the same cost, so that timing does not
        # tell which user names exist.
        cost = int(next(iter(self._users.values()))[4:6]) if self._users else 4
        self._decoy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))

    def check(self, authorization: str | None) -> bool:
        attempt = self._attempt(authorization)
        if attempt is None:
            return False
        if self._known(attempt):
            return True
        with self._bcrypt_lock:
            matched = bcrypt.checkpw(attempt.password, attempt.hashed or self._decoy)
        if matched and attempt.hashed is not None:
            self._verified[attempt.user] = (attempt.hashed, attempt.digest)
            return True
        return False

    def needs_bcrypt(self, authorization: str | None) -> bool:
        """Whether :meth:`check` of this header would run bcrypt: it carries credentials that
        were not verified before. The one slow path (tens of milliseconds, and queued behind
        other checks), so the server keeps such requests off its event loop."""
        attempt = self._attempt(authorization)
        return attempt is not None and not self._known(attempt)

    def _attempt(self, authorization: str | None) -> _Attempt | None:
        credentials = _decode_basic(authorization)
        if credentials is None:
            return None
        user, password = credentials
        password = password[:BCRYPT_MAX_PASSWORD]
        digest = hmac.digest(self._key, password, hashlib.sha256)
        return _Attempt(user, password, self._users.get(user), digest)

    def _known(self, attempt: _Attempt) -> bool:
        """The cached path: this user's current hash was matched by this password before."""
        known = self._verified.get(attempt.user)
        return (
            attempt.hashed is not None
            and known is not None
            and known[0] == attempt.hashed
            and hmac.compare_digest(known[1], attempt.digest)
        )


class _Attempt(NamedTuple):
    user: str
    password: bytes
    """At most the bytes bcrypt reads."""
    hashed: bytes | None
    """The user's hash; ``None`` for an unknown user."""
    digest: bytes
    """Keyed hash of the password, the key of the verified cache."""


def _decode_basic(authorization: str | None) -> tuple[str, bytes] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    if not sep:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None
