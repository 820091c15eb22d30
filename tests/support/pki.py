"""Certificates for the HTTPS tests, and the web-config files that name them."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


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


def write_config(directory: Path, document: dict[str, object]) -> Path:
    """``directory``/web-config.yml holding ``document``."""
    path = directory / "web-config.yml"
    path.write_text(json.dumps(document))  # JSON is YAML
    return path
