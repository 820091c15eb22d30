"""The one way a ``host:port`` listen address is read: by the exporter's settings, the
health check and the simulator alike (``[v6]:port`` for IPv6, brackets removed)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator


def parse_listen_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) into its parts; ``ValueError`` names the problem."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {value!r}")
    host = host.removeprefix("[").removesuffix("]")
    if not host:
        raise ValueError(f"expected host:port with a host, got {value!r}")
    if ":" in host:
        ipaddress.IPv6Address(host)
    return host, int(port)


def _checked(value: str) -> str:
    parse_listen_address(value)
    return value


ListenAddress = Annotated[str, AfterValidator(_checked)]
"""A settings field holding a listen address, checked when the settings are read."""
