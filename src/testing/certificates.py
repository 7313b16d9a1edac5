"""Throwaway certificates for TLS tests: a CA, a server certificate for 127.0.0.1, clients."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portside.servers.tls import ServerTls

__all__ = ["make_certificate", "make_other_ca", "make_server_tls"]

_VALID = datetime.timedelta(days=2)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _new_ca(directory: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key, directory / f"{name}.key")
    _write_cert(cert, directory / f"{name}.crt")
    return key, cert


def make_certificate(
    directory: Path,
    name: str,
    *,
    ca_name: str,
    server: bool,
) -> tuple[Path, Path]:
    """A certificate ``<name>.crt`` and key ``<name>.key`` signed by the CA ``ca_name`` in
    ``directory`` (created by ``make_server_tls``); a server certificate is for 127.0.0.1
    and localhost. Returns (certificate, key)."""
    ca_key = serialization.load_pem_private_key((directory / f"{ca_name}.key").read_bytes(), None)
    ca_cert = x509.load_pem_x509_certificate((directory / f"{ca_name}.crt").read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALID)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(key, directory / f"{name}.key")
    _write_cert(cert, directory / f"{name}.crt")
    return directory / f"{name}.crt", directory / f"{name}.key"


def make_server_tls(directory: Path) -> ServerTls:
    """A fresh CA ``ca`` in ``directory``, a server certificate and a client certificate
    (``client``) it signed: everything a TLS server and its clients need."""
    directory.mkdir(parents=True, exist_ok=True)
    _new_ca(directory, "ca")
    cert, key = make_certificate(directory, "server", ca_name="ca", server=True)
    client_cert, client_key = make_certificate(directory, "client", ca_name="ca", server=False)
    return ServerTls(
        ca=directory / "ca.crt",
        cert=cert,
        key=key,
        client_cert=client_cert,
        client_key=client_key,
    )


def make_other_ca(directory: Path) -> tuple[Path, Path]:
    """A client certificate from an unrelated CA ``stranger-ca`` (one a server must refuse)."""
    directory.mkdir(parents=True, exist_ok=True)
    _new_ca(directory, "stranger-ca")
    return make_certificate(directory, "stranger", ca_name="stranger-ca", server=False)
