"""How requests prove who we are: the seam every credential kind plugs into.

Each scheme is an ``httpx.Auth``, so it sees every request (including retries) right before it is
sent: a static ``X-Auth-Token``, AK/SK signing (SDK-HMAC-SHA256) with an optional security
token for temporary credentials, or IAM tokens obtained with a user's password, cached and
refreshed inside the auth flow without the client knowing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from pydantic import SecretStr, TypeAdapter, ValidationError

from modelarts_exporter.cloud import signing
from modelarts_exporter.cloud.errors import PollError, Reason
from modelarts_exporter.text import one_line

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


@dataclass(frozen=True, slots=True)
class IamToken:
    value: str
    expires_at: float
    """Unix seconds."""
    obtained_at: float
    project_id: str | None

    def due_for_refresh(self, now: float) -> bool:
        """Refresh ahead of expiry: in the last quarter of the token's life, at most an hour
        before it ends (tokens live 24 h, so that is once a day, never on every poll)."""
        margin = min(3600.0, (self.expires_at - self.obtained_at) / 4)
        return now >= self.expires_at - margin


class IamPasswordAuth(httpx.Auth):
    """Obtains IAM tokens with a user name and password and sends them as ``X-Auth-Token``.

    The token is cached and refreshed ahead of its expiry, one refresh at a time however many
    pages are being fetched concurrently. A 401 from ModelArts (token revoked early, e.g. by a
    password change) invalidates it; the request is retried once with a new token, and a second
    401 goes back to the caller as an ``auth`` failure.
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        iam_endpoint: str,
        username: str,
        password: SecretStr,
        domain_name: str,
        project_id: str | None = None,
        project_name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not project_id and not project_name:
            raise ValueError("an IAM token needs a project id or name as its scope")
        self._http = http
        self._url = iam_endpoint.rstrip("/") + "/auth/tokens"
        self._username = username
        self._password = password
        self._domain = domain_name
        self._scope = {"id": project_id} if project_id else {"name": project_name}
        self._clock = clock
        self._token: IamToken | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"IamPasswordAuth(user={self._username!r}, domain={self._domain!r}, "
            "password=**********)"
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def project_id(self) -> str:
        """The id of the token's project (IAM resolves a project given by name)."""
        token = await self._current(None)
        if token.project_id is None:
            raise PollError(Reason.AUTH, "IAM token has no project in its scope")
        return token.project_id

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._current(None)
        request.headers["X-Auth-Token"] = token.value
        response = yield request
        if response.status_code == 401:
            token = await self._current(token)
            request.headers["X-Auth-Token"] = token.value
            yield request

    async def _current(self, rejected: IamToken | None) -> IamToken:
        """A valid token: the cached one unless it is due or was just ``rejected``."""
        async with self._lock:
            token = self._token
            if token is None or token is rejected or token.due_for_refresh(self._clock()):
                token = self._token = await self._obtain()
            return token

    async def _obtain(self) -> IamToken:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self._username,
                            "password": self._password.get_secret_value(),
                            "domain": {"name": self._domain},
                        }
                    },
                },
                "scope": {"project": self._scope},
            }
        }
        try:
            response = await self._http.post(self._url, params={"nocatalog": "true"}, json=body)
        except httpx.TimeoutException:
            raise PollError(Reason.TIMEOUT, f"IAM did not answer in time ({self._url})") from None
        except httpx.RequestError as error:
            kind = type(error).__name__
            raise PollError(Reason.CONNECTION, f"IAM unreachable: {kind} ({self._url})") from None
        token = response.headers.get("X-Subject-Token")
        if response.status_code != 201 or not token:
            raise _iam_error(response)
        try:
            issued = _TOKEN_BODY.validate_json(response.content).token
            expires_at = datetime.fromisoformat(issued.expires_at).timestamp()
        except (ValidationError, ValueError):
            raise PollError(
                Reason.INVALID_RESPONSE, "IAM token answer without a readable expires_at"
            ) from None
        project = issued.project.id if issued.project else None
        return IamToken(token, expires_at, self._clock(), project)


@dataclass(frozen=True, slots=True)
class _Project:
    id: str | None = None


@dataclass(frozen=True, slots=True)
class _Token:
    expires_at: str
    project: _Project | None = None


@dataclass(frozen=True, slots=True)
class _TokenBody:
    token: _Token


@dataclass(frozen=True, slots=True)
class _KeystoneError:
    message: str | None = None


@dataclass(frozen=True, slots=True)
class _IamErrorBody:
    error: _KeystoneError | None = None
    error_msg: str | None = None
    error_code: str | None = None


_TOKEN_BODY = TypeAdapter(_TokenBody)
_IAM_ERROR = TypeAdapter(_IamErrorBody)


def _iam_error(response: httpx.Response) -> PollError:
    """IAM's refusal in one line: its own message (wrong password, locked user), never ours."""
    try:
        parsed = _IAM_ERROR.validate_json(response.content)
        message = (parsed.error.message if parsed.error else None) or parsed.error_msg
        code = parsed.error_code
    except ValidationError:
        message, code = None, None
    detail = one_line(message or "no message")
    prefix = f"{one_line(code, 64)}: " if code else ""
    status = response.status_code
    reason = Reason.AUTH if status in (400, 401, 403) else Reason.SERVER_ERROR
    if status == 429:
        reason = Reason.THROTTLED
    return PollError(reason, f"IAM refused the token request: HTTP {status} ({prefix}{detail})")
