"""TLS files a private server presents and checks: its certificate, its key, the trusted CA."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerTls"]


@dataclass(frozen=True)
class ServerTls:
    """A server certificate and key, and the CA whose certificates clients must present.

    Args:
        ca: PEM file of the CA that signed the server's and the clients' certificates.
        cert: The server's certificate (PEM).
        key: The server's private key (PEM, unencrypted).
        client_cert: A client certificate the harness itself uses to check the server is up.
        client_key: The key of ``client_cert``.
    """

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client-side context trusting ``ca`` and presenting ``client_cert``."""
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context

    def url_query(self) -> str:
        """The ``rediss://`` query that makes redis-py trust ``ca`` and present the client
        certificate: ``ssl_ca_certs=...&ssl_certfile=...&ssl_keyfile=...``."""
        return (
            f"ssl_ca_certs={self.ca}&ssl_certfile={self.client_cert}&ssl_keyfile={self.client_key}"
        )
