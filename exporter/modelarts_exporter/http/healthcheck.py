"""``modelarts-exporter healthcheck``: is the exporter serving in this container alive? The
container image's HEALTHCHECK runs it beside the serving process.

It reads where the exporter listens and its web configuration file, nothing else: no target or
credential setting can make a check fail. It asks ``/healthz`` on the loopback side of the listen
address, over HTTPS when the web config turns TLS on. A server that requires client certificates
refuses any TLS connection that has none, before a path is sent, so there a TCP connection the
server accepts is all this check can see.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from pathlib import Path

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings

from modelarts_exporter.config.addresses import ListenAddress, parse_listen_address
from modelarts_exporter.config.settings import SETTINGS_CONFIG
from modelarts_exporter.config.target_fields import DEFAULT_PORT
from modelarts_exporter.http import webconfig

TIMEOUT_SECONDS = 4.0
"""Per step (connecting, reading). Under the image's ``HEALTHCHECK --timeout=5s``, so that a hung
exporter is reported by this check's line rather than by Docker killing it."""


# The docstring is the --help text; it starts on a line of its own so that it is dedented there.
class HealthcheckSettings(BaseSettings):
    """
    Exit 0 when the exporter serving on LISTEN_ADDRESS answers: GET /healthz over HTTP, or
    over HTTPS (its certificate not checked: it is this container's own process) when
    WEB_CONFIG_FILE has tls_server_config. With client_auth_type RequireAndVerifyClientCert it
    cannot present a client certificate, so an accepted TCP connection counts as alive. Exit 1
    with one line on stderr otherwise. Reads only these two settings, from the environment as
    the exporter does: the image's HEALTHCHECK runs it without flags.
    """

    model_config = SETTINGS_CONFIG

    listen_address: ListenAddress = Field(
        f"0.0.0.0:{DEFAULT_PORT}",
        description="host:port the exporter serves on; 0.0.0.0 and :: are asked on loopback.",
    )
    web_config_file: Path | None = Field(
        None, description="The exporter's web configuration file: says whether it speaks HTTPS."
    )


class UnhealthyError(Exception):
    """The exporter did not answer as a live one does; ``str()`` is one line naming why."""


def loopback(host: str) -> str:
    """The address to reach a server listening on ``host`` from beside it: a wildcard address
    listens on loopback too, and loopback needs no name resolution or route."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a name
        return host or "127.0.0.1"
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return host


def check(settings: HealthcheckSettings, timeout: float = TIMEOUT_SECONDS) -> str:
    """One line saying what answered; :class:`UnhealthyError` when nothing did as it should."""
    host, port = parse_listen_address(settings.listen_address)
    host = loopback(host)
    tls = None
    if settings.web_config_file is not None:
        try:
            tls = webconfig.load(settings.web_config_file).tls
        except webconfig.WebConfigError as error:
            raise UnhealthyError(f"bad web config: {error}") from None
    if tls is not None and tls.verify_mode is ssl.CERT_REQUIRED:
        return _connect(host, port, timeout)
    return _get_healthz(host, port, timeout, https=tls is not None)


def _connect(host: str, port: int, timeout: float) -> str:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        raise UnhealthyError(f"tcp {host}:{port}: no connection within {timeout:g} s") from None
    except OSError as error:
        raise UnhealthyError(f"tcp {host}:{port}: {error.strerror or error}") from None
    return f"tcp {host}:{port} accepted a connection (client certificates required: no GET)"


def _get_healthz(host: str, port: int, timeout: float, *, https: bool) -> str:
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"{'https' if https else 'http'}://{authority}/healthz"
    # The server's certificate is not checked: the server is this container's own exporter over
    # loopback, where no one can sit in between, and its certificate names what scrapers dial
    # (not 127.0.0.1), often signed by a CA this container does not hold.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        # trust_env=False: HTTPS_PROXY and friends are set for the cloud API, never for loopback.
        response = httpx.get(url, timeout=timeout, verify=unverified, trust_env=False)
    except httpx.TimeoutException:
        raise UnhealthyError(f"{url}: no answer within {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise UnhealthyError(f"{url}: {str(error) or type(error).__name__}") from None
    if response.status_code != httpx.codes.OK:
        raise UnhealthyError(f"{url} answered HTTP {response.status_code}")
    return f"{url} answered HTTP 200"
