"""Who may talk to the exporter's HTTP endpoints: the web configuration file of Prometheus
exporters (exporter-toolkit's ``web-config.yml``), so the same file, Helm values and Prometheus
scrape settings work here as for node_exporter.

- ``tls_server_config``: serve HTTPS (``cert_file``, ``key_file``, ``min_version``,
  ``max_version``), optionally requiring client certificates (``client_auth_type``,
  ``client_ca_file`` or inline ``client_ca``). Relative paths are relative to the file.
- ``basic_auth_users``: user name to bcrypt hash. Every endpoint except ``/healthz`` and
  ``/readyz`` then asks for a password; those two stay open because Kubernetes probes cannot send
  credentials. Without a password ``/readyz`` tells only whether the exporter is ready, not which
  targets are stale (their names and project ids are for authenticated eyes, like ``/metrics``).
- ``http_server_config.headers``: security headers added to every answer.

The file is checked at start-up: a problem stops the exporter with one line naming it. While
serving, :mod:`~modelarts_exporter.http.reload` picks up changes to it and to the files it names. A
setting of the format that this exporter cannot honour (cipher suite and curve lists,
client SAN allow-lists, inline server certificates, client-certificate modes that request a
certificate without verifying it, rate limits) is refused rather than silently ignored.
The password check is :mod:`.basicauth`; the middleware applying both is :mod:`.guard`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelarts_exporter.config.yamlfile import YamlFileError, load_yaml

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Served without a password: Kubernetes probes carry none."""
_UNCHECKED_PATHS = OPEN_PATHS - {"/readyz"}
"""Where a password is never looked at: ``/readyz`` checks one it is given, to say more."""

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}
_UNVERIFIED_CLIENT_AUTH = frozenset({"RequestClientCert", "RequireAnyClientCert"})
_SECURITY_HEADERS = frozenset(
    {
        "Content-Security-Policy",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "X-XSS-Protection",
        "Strict-Transport-Security",
    }
)
_BCRYPT_HASH = re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}")
_BCRYPT_MAX_PASSWORD = 72
"""bcrypt reads this many bytes of a password; Go's bcrypt (exporter-toolkit) ignores the rest."""

# The keys of the format (exporter-toolkit), and what this exporter does with each.
_TOP_KEYS = frozenset({"tls_server_config", "http_server_config", "basic_auth_users"})
_TLS_KEYS = frozenset(
    {
        "cert_file",
        "key_file",
        "client_auth_type",
        "client_ca_file",
        "client_ca",
        "min_version",
        "max_version",
        "prefer_server_cipher_suites",
    }
)
_HTTP_KEYS = frozenset({"http2", "headers"})
_UNSUPPORTED = {
    "rate_limit": "rate limiting",
    "tls_server_config.cert": "an inline certificate (use cert_file)",
    "tls_server_config.key": "an inline key (use key_file)",
    "tls_server_config.cipher_suites": "choosing cipher suites",
    "tls_server_config.curve_preferences": "choosing curves",
    "tls_server_config.client_allowed_sans": "a client SAN allow-list",
}


class WebConfigError(ValueError):
    """The web configuration file cannot be used; ``str()`` is one line naming the problem."""


@dataclass(frozen=True)
class WebConfig:
    """What the file asks for; every part optional."""

    tls: ssl.SSLContext | None = None
    users: Mapping[str, bytes] | None = None
    """User name to bcrypt hash; ``None`` or empty: no password asked."""
    headers: tuple[tuple[str, str], ...] = ()
    files: tuple[Path, ...] = ()
    """The file itself and the files it names: a change to any of them is a new configuration."""

    def describe(self) -> str:
        """For the start-up log line: what protects the endpoints."""
        users = len(self.users or {})
        client = ""
        if self.tls is not None and self.tls.verify_mode is ssl.CERT_REQUIRED:
            client = " with client certificates"
        return f"tls={'on' + client if self.tls else 'off'} basic_auth_users={users}"


def load(path: Path) -> WebConfig:
    """Read and check a web configuration file; :class:`WebConfigError` otherwise."""
    try:
        document = load_yaml(path)
    except YamlFileError as error:
        raise WebConfigError(str(error)) from None
    try:
        config = _parse(document, path.parent)
    except WebConfigError as error:
        raise WebConfigError(f"{path}: {error}") from None
    return dataclasses.replace(config, files=(path, *config.files))


def _mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise WebConfigError(f"{where} must be a mapping")
    return value


def _check_keys(section: Mapping[str, object], known: Iterable[str], prefix: str) -> None:
    for key in section:
        name = f"{prefix}{key}"
        if name in _UNSUPPORTED:
            raise WebConfigError(f"{name}: {_UNSUPPORTED[name]} is not supported by this exporter")
        if key not in known:
            raise WebConfigError(f"unknown setting {name}")


def _parse(document: object, base: Path) -> WebConfig:
    top = _mapping(document, "the file")
    _check_keys(top, _TOP_KEYS, "")
    tls, files = _tls(_mapping(top.get("tls_server_config"), "tls_server_config"), base)
    http = _mapping(top.get("http_server_config"), "http_server_config")
    _check_keys(http, _HTTP_KEYS, "http_server_config.")
    if not isinstance(http.get("http2", True), bool):
        raise WebConfigError("http_server_config.http2 must be true or false")
    return WebConfig(
        tls=tls,
        users=_users(_mapping(top.get("basic_auth_users"), "basic_auth_users")),
        headers=_headers(_mapping(http.get("headers"), "http_server_config.headers")),
        files=files,
    )


def _string(section: Mapping[str, object], key: str, where: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise WebConfigError(f"{where}.{key} must be a string")
    return value


def _tls(
    section: Mapping[str, object], base: Path
) -> tuple[ssl.SSLContext | None, tuple[Path, ...]]:
    where = "tls_server_config"
    _check_keys(section, _TLS_KEYS, f"{where}.")
    cert, key = _string(section, "cert_file", where), _string(section, "key_file", where)
    ca_file, ca = _string(section, "client_ca_file", where), _string(section, "client_ca", where)
    client_auth = _string(section, "client_auth_type", where)
    if not (cert or key or ca_file or ca or client_auth):
        return None, ()  # as exporter-toolkit: an empty section means plain HTTP
    if not cert or not key:
        raise WebConfigError(f"{where} needs both cert_file and key_file")
    client_auth = client_auth or "NoClientCert"
    if client_auth in _UNVERIFIED_CLIENT_AUTH:
        raise WebConfigError(
            f"{where}.client_auth_type {client_auth} (a client certificate that is not verified) "
            "is not supported by this exporter; use VerifyClientCertIfGiven or "
            "RequireAndVerifyClientCert"
        )
    if client_auth not in _CLIENT_AUTH:
        choices = ", ".join(_CLIENT_AUTH)
        raise WebConfigError(f"{where}.client_auth_type must be one of {choices}")
    if (ca_file or ca) and client_auth == "NoClientCert":
        raise WebConfigError(f"{where}: client CAs are configured but client_auth_type is not set")
    if not (ca_file or ca) and client_auth != "NoClientCert":
        raise WebConfigError(f"{where}.client_auth_type {client_auth} needs client_ca_file")
    versions = [
        _tls_version(section, "min_version", where, "TLS12"),
        _tls_version(section, "max_version", where, "TLS13"),
    ]
    if versions[0] > versions[1]:
        raise WebConfigError(f"{where}.min_version is above max_version")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version, context.maximum_version = versions
    if section.get("prefer_server_cipher_suites", True) is not False:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    cert_path, key_path = base / cert, base / key
    # ssl names no file when one is missing: look first, so that the error can.
    for path in (cert_path, key_path):
        if not path.is_file():
            raise WebConfigError(f"{where}: no such file: {path}")
    try:
        context.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as error:
        raise WebConfigError(
            f"{where}: cannot load the certificate {cert_path} and key {key_path}: "
            f"{getattr(error, 'reason', None) or error}"
        ) from None
    context.verify_mode = _CLIENT_AUTH[client_auth]
    if ca_file or ca:
        try:
            if ca_file:
                context.load_verify_locations(cafile=base / ca_file)
            if ca:
                context.load_verify_locations(cadata=ca)
        except FileNotFoundError:
            raise WebConfigError(f"{where}: no such file: {base / ca_file}") from None
        except (OSError, ssl.SSLError) as error:
            reason = getattr(error, "reason", None) or error
            raise WebConfigError(f"{where}: cannot load the client CAs: {reason}") from None
    return context, (cert_path, key_path, *([base / ca_file] if ca_file else []))


def _tls_version(
    section: Mapping[str, object], key: str, where: str, default: str
) -> ssl.TLSVersion:
    name = _string(section, key, where) or default
    if name not in _TLS_VERSIONS:
        raise WebConfigError(f"{where}.{key} must be one of {', '.join(_TLS_VERSIONS)}")
    return _TLS_VERSIONS[name]


def _users(section: Mapping[str, object]) -> dict[str, bytes] | None:
    users: dict[str, bytes] = {}
    for user, hashed in section.items():
        if not user or ":" in user:
            raise WebConfigError(f"basic_auth_users: {user!r} is not a usable user name")
        if not isinstance(hashed, str) or not _BCRYPT_HASH.fullmatch(hashed):
            # The value is a secret's hash: name the user, never echo it.
            raise WebConfigError(f"basic_auth_users.{user} is not a bcrypt hash ($2y$10$...)")
        users[user] = hashed.encode()
    return users or None


def _headers(section: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    headers = []
    for name, value in section.items():
        if name not in _SECURITY_HEADERS:
            raise WebConfigError(
                f"http_server_config.headers: {name} is not one of {', '.join(_SECURITY_HEADERS)}"
            )
        if not isinstance(value, str) or "\n" in value or "\r" in value:
            raise WebConfigError(f"http_server_config.headers.{name} must be a one-line string")
        if value:
            headers.append((name, value))
    return tuple(headers)
