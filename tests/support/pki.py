"""Certificates for the HTTPS tests, and the web-config files that name them."""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import trustme

from support.secrets import BASIC_AUTH_PASSWORD, NEW_BASIC_AUTH_PASSWORD

USER = "prometheus"
HASH = bcrypt.hashpw(BASIC_AUTH_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
"""The web config's hash of :data:`~support.secrets.BASIC_AUTH_PASSWORD` (cheap rounds)."""
NEW_HASH = bcrypt.hashpw(NEW_BASIC_AUTH_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
TLS = {"cert_file": "server.pem", "key_file": "server.key"}
"""``tls_server_config`` naming the server certificate of :func:`make_pki` or :func:`install`."""
MTLS = {**TLS, "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": "ca.pem"}


@dataclass
class Pki:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as files."""

    directory: Path
    ca: trustme.CA

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    def client_context(self, *, with_certificate: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file)
        if with_certificate:
            context.load_cert_chain(self.directory / "client.pem", self.directory / "client.key")
        return context


def make_pki(directory: Path) -> Pki:
    """A new CA and its certificates written to ``directory``: ca.pem, server.pem and
    server.key (for 127.0.0.1 and localhost), client.pem and client.key."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(directory / "server.pem"))
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    client = ca.issue_cert("scraper@example.org")
    client.cert_chain_pems[0].write_to_path(str(directory / "client.pem"))
    client.private_key_pem.write_to_path(str(directory / "client.key"))
    return Pki(directory, ca)


@dataclass(frozen=True)
class Issued:
    """A server certificate for 127.0.0.1 from its own CA, as bytes."""

    ca: trustme.CA
    cert: bytes
    key: bytes

    @property
    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert.decode())

    def trusting(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def issue_certificate() -> Issued:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    return Issued(ca, leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes())


def replace(path: Path, data: bytes) -> None:
    """Swap a file's content in one rename, as cert-manager's Secret updates do."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    temporary.replace(path)


def install(directory: Path, issued: Issued) -> None:
    """``issued`` as ``directory``/server.pem and server.key, each swapped in one rename."""
    replace(directory / "server.pem", issued.cert)
    replace(directory / "server.key", issued.key)


def write_config(directory: Path, document: Mapping[str, object]) -> Path:
    """``directory``/web-config.yml holding ``document``, swapped in one rename."""
    path = directory / "web-config.yml"
    replace(path, json.dumps(document).encode())  # JSON is YAML
    return path
