"""The API gateway in front of the fake service: IAM-token and AK/SK (SDK-HMAC-SHA256) checks.

Answers like the Huawei Cloud / Open Telekom Cloud gateway: 401 ``APIG.0301`` for a missing or
unknown token, 401 ``APIG.0303`` for anything wrong with a signed request (unknown AK, bad
signature, missing/stale ``X-Sdk-Date``, wrong or unsigned ``X-Security-Token``). The signature is
recomputed with ``signing.verify``, the code the client signs with: round
trips through this gateway prove the client's wiring (headers, path, query), while the algorithm
itself is pinned by the vendor's test vectors in the signing tests. Credentials can be replaced
at runtime (token rotation, revocation).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from modelarts_exporter.cloud.signing import DATE_HEADER, parse_authorization, parse_date, verify

# Header names, not secrets.
_TOKEN_HEADER = "x-auth-token"  # noqa: S105
_SECURITY_TOKEN_HEADER = "x-security-token"  # noqa: S105


@dataclass(frozen=True, slots=True)
class Rejection:
    status: int
    payload: dict[str, object]


def _iam(reason: str) -> Rejection:
    message = f"Incorrect IAM authentication information: {reason}"
    return Rejection(401, {"error_code": "APIG.0301", "error_msg": message})


def _app(reason: str) -> Rejection:
    message = f"Incorrect app authentication information: {reason}"
    return Rejection(401, {"error_code": "APIG.0303", "error_msg": message})


class Gateway:
    """Authentication as configured; open (everything passes) when neither tokens nor
    credentials are set."""

    def __init__(
        self,
        *,
        tokens: Collection[str] | None = None,
        credentials: Mapping[str, str] | None = None,
        security_tokens: Mapping[str, str] | None = None,
        max_clock_skew_s: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._lock = threading.Lock()
        self._tokens: frozenset[str] | None = None
        self._credentials: dict[str, str] | None = None
        self._security_tokens: dict[str, str] = {}
        self._issued: dict[str, float] = {}
        """Tokens issued by the simulated IAM, with their expiry (wall clock)."""
        self._issuing = False
        self._max_skew = max_clock_skew_s
        self._clock = clock
        self.set_tokens(tokens)
        self.set_credentials(credentials, security_tokens)

    def set_tokens(self, tokens: Iterable[str] | None) -> None:
        """Accept exactly these IAM tokens from now on (``None``: token auth off)."""
        with self._lock:
            self._tokens = None if tokens is None else frozenset(tokens)

    def set_credentials(
        self,
        credentials: Mapping[str, str] | None,
        security_tokens: Mapping[str, str] | None = None,
    ) -> None:
        """Accept these AK → SK pairs; AKs in ``security_tokens`` are temporary credentials whose
        requests must carry (and sign) that ``X-Security-Token``."""
        with self._lock:
            self._credentials = None if credentials is None else dict(credentials)
            self._security_tokens = dict(security_tokens or {})

    def accept_issued_tokens(self) -> None:
        """An IAM is attached: authentication is on even without static tokens."""
        with self._lock:
            self._issuing = True

    def issue(self, token: str, expires_at: float) -> None:
        with self._lock:
            self._issued[token] = expires_at

    def revoke(self, token: str) -> None:
        with self._lock:
            self._issued.pop(token, None)

    def check(
        self,
        *,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Rejection | None:
        """``None`` if the request may pass. ``headers`` must have lower-case names."""
        with self._lock:
            tokens, credentials = self._tokens, self._credentials
            security_tokens = self._security_tokens
            issuing = self._issuing
        if tokens is None and credentials is None and not issuing:
            return None
        token = headers.get(_TOKEN_HEADER)
        if token is not None:
            if tokens is not None and token in tokens:
                return None
            with self._lock:
                expires_at = self._issued.get(token)
            if expires_at is not None and expires_at > self._clock():
                return None
            if expires_at is not None:
                return _iam("token expired")
            return _iam("verify token fail")
        authorization = headers.get("authorization")
        if authorization is None:
            return _iam("x-auth-token not found")
        return self._check_signature(
            authorization,
            credentials or {},
            security_tokens,
            method=method,
            path=path,
            query=list(query),
            headers=headers,
            body=body,
        )

    def _check_signature(
        self,
        authorization: str,
        credentials: Mapping[str, str],
        security_tokens: Mapping[str, str],
        *,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Rejection | None:
        fields = parse_authorization(authorization)
        if fields is None:
            return _app("authorization format incorrect")
        access_key = fields["Access"]
        if access_key not in credentials:
            return _app("access key not found")
        sdk_date = headers.get(DATE_HEADER.lower())
        if sdk_date is None:
            return _app(f"{DATE_HEADER} not found")
        try:
            signed_at = parse_date(sdk_date).timestamp()
        except ValueError:
            return _app(f"{DATE_HEADER} format incorrect")
        # Gateways compare with their own (wall) clock, never with the tenant's simulated one.
        if abs(self._clock() - signed_at) > self._max_skew:
            return _app("request expired")
        required = security_tokens.get(access_key)
        if required is not None:
            signed = fields["SignedHeaders"].split(";")
            given = headers.get(_SECURITY_TOKEN_HEADER)
            if given != required or _SECURITY_TOKEN_HEADER not in signed:
                return _app("security token invalid")
        if not verify(
            authorization=authorization,
            secret_for=credentials,
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
        ):
            return _app("verify aksk signature fail")
        return None
