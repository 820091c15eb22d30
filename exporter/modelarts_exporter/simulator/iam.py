"""A fake IAM: ``POST /v3/auth/tokens`` with password credentials issues short-lived tokens.

Answers like Keystone-based IAM of both clouds: 201 with the token in ``X-Subject-Token`` and
``token.expires_at`` in the body; 401 with IAM's error shape for a wrong password or a locked
user; ``?nocatalog=true`` leaves out the (large) service catalog. Issued tokens are handed to the
:class:`~.gateway.Gateway`, which rejects them once expired or revoked — so a client's caching,
refresh and re-authentication can be tested against the clock.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .gateway import Gateway


@dataclass(frozen=True, slots=True)
class IamUser:
    password: str
    domain: str
    locked: bool = False


@dataclass(frozen=True, slots=True)
class IamAnswer:
    status: int
    payload: dict[str, object]
    token: str | None = None


def _error(status: int, title: str, message: str) -> IamAnswer:
    return IamAnswer(status, {"error": {"code": status, "title": title, "message": message}})


def _catalog() -> list[object]:
    # Enough entries that asking without nocatalog visibly costs more.
    return [
        {"type": f"service-{i}", "endpoints": [{"url": f"https://svc{i}.example/v1"}]}
        for i in range(200)
    ]


class Iam:
    """Users and the tokens they obtained; thread-safe. ``token_lifetime_s`` is short in tests
    (24 h in the real cloud)."""

    def __init__(
        self,
        users: Mapping[str, IamUser],
        *,
        project_id: str,
        project_name: str,
        token_lifetime_s: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._users = dict(users)
        self._project_id = project_id
        self._project_name = project_name
        self.token_lifetime_s = token_lifetime_s
        self._clock = clock
        self._lock = threading.Lock()
        self._gateway: Gateway | None = None
        self._issued: list[str] = []
        self.requests = 0
        """Token requests received, successful or not."""

    def attach(self, gateway: Gateway) -> None:
        self._gateway = gateway
        gateway.accept_issued_tokens()

    @property
    def issued(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._issued)

    def revoke_all(self) -> None:
        """What a password change does: every token issued so far stops working."""
        assert self._gateway is not None
        for token in self.issued:
            self._gateway.revoke(token)

    def set_user(self, name: str, user: IamUser) -> None:
        with self._lock:
            self._users[name] = user

    def answer(self, body: bytes, query: Mapping[str, str]) -> IamAnswer:
        with self._lock:
            self.requests += 1
        try:
            document = json.loads(body)
            auth = document["auth"]
            user_doc = auth["identity"]["password"]["user"]
            name, password = str(user_doc["name"]), str(user_doc["password"])
            domain = str(user_doc["domain"]["name"])
            project = auth["scope"]["project"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "Bad Request", "The request body is malformed.")
        with self._lock:
            user = self._users.get(name)
        if user is None or user.password != password or user.domain != domain:
            return _error(401, "Unauthorized", "The username or password is wrong.")
        if user.locked:
            return _error(401, "Unauthorized", "The user is locked, please try again later.")
        if project.get("id") not in (None, self._project_id) or project.get("name") not in (
            None,
            self._project_name,
        ):
            return _error(401, "Unauthorized", "The project in the scope does not exist.")
        return self._issue(name, domain, with_catalog=query.get("nocatalog") != "true")

    def _issue(self, name: str, domain: str, *, with_catalog: bool) -> IamAnswer:
        assert self._gateway is not None
        token = "MII" + secrets.token_urlsafe(48)
        now = self._clock()
        expires = now + self.token_lifetime_s
        self._gateway.issue(token, expires)
        with self._lock:
            self._issued.append(token)
        body: dict[str, object] = {
            "methods": ["password"],
            "expires_at": _iso(expires),
            "issued_at": _iso(now),
            "user": {"name": name, "domain": {"name": domain}},
            "project": {"id": self._project_id, "name": self._project_name},
        }
        if with_catalog:
            body["catalog"] = _catalog()
        return IamAnswer(201, {"token": body}, token)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
