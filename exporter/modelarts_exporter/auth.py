"""How requests prove who we are: the seam every credential kind plugs into.

Each scheme is an ``httpx.Auth``, so it sees every request (including retries) right before it is
sent: a static ``X-Auth-Token``, or AK/SK signing (SDK-HMAC-SHA256) with an optional security token
for temporary credentials. Schemes that obtain tokens (IAM passwords) add a refresh step in their
auth flow without the client knowing.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr

from modelarts_exporter import signing

Clock = Callable[[], datetime]

# Only headers nothing between us and the gateway rewrites: signing ``Connection`` or
# ``User-Agent`` would break the signature behind any proxy that touches them.
_SIGNED_HEADERS = frozenset({"host", "x-sdk-date", "x-security-token", "content-type"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class StaticTokenAuth(httpx.Auth):
    """An IAM token obtained elsewhere (valid for 24 h at most)."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenAuth(token=**********)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["X-Auth-Token"] = self._token.get_secret_value()
        yield request


class AkSkAuth(httpx.Auth):
    """Access key / secret key signing; ``security_token`` makes them temporary credentials,
    whose token header is added *before* signing because the gateway checks it is signed."""

    requires_request_body = True

    def __init__(
        self,
        access_key: str,
        secret_key: SecretStr,
        security_token: SecretStr | None = None,
        clock: Clock = _utcnow,
    ) -> None:
        self._access_key = access_key
        self._secret_key = secret_key
        self._security_token = security_token
        self._clock = clock

    def __repr__(self) -> str:
        temporary = self._security_token is not None
        return (
            f"AkSkAuth(access_key={self._access_key!r}, secret_key=**********, "
            f"temporary={temporary})"
        )

    def sign(self, request: httpx.Request) -> None:
        request.headers[signing.DATE_HEADER] = signing.format_date(self._clock())
        if self._security_token is not None:
            request.headers["X-Security-Token"] = self._security_token.get_secret_value()
        request.headers.pop("Authorization", None)
        raw_path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        query = httpx.QueryParams(request.url.query.decode("ascii")).multi_items()
        request.headers["Authorization"] = signing.sign(
            access_key=self._access_key,
            secret_key=self._secret_key.get_secret_value(),
            method=request.method,
            path=raw_path,
            query=query,
            headers={
                name: value
                for name, value in request.headers.items()
                if name.lower() in _SIGNED_HEADERS
            },
            body=request.content,
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
