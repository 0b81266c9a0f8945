"""HTTPS for both listeners: the user's certificate, or one from a local CA kept in the data dir.

With ``--tls`` and no ``--tls-cert``, the first start makes a CA (``<data-dir>/tls/ca.crt``,
its key beside it, readable only by the owner) and every start makes sure the server
certificate (``server.crt``) is signed by it and names every host this server answers to:
``localhost``, ``127.0.0.1``, ``::1``, ``--host`` unless it is a wildcard address, and the
registry host names of ``--registry-host``. A certificate that already covers them and is not
about to expire is kept, so several processes starting on one data directory agree (a file lock
serialises them). Users trust ``ca.crt`` once (README, TLS) and then no client needs an
insecure flag. Certificates are made with ``cryptography``: keys are ECDSA P-256.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import ssl
from pathlib import Path

from ecr_emulator.config import Settings

CA_DAYS = 3650
SERVER_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=30)


def tls_dir(settings: Settings) -> Path:
    return settings.data_path / "tls"


def ca_path(settings: Settings) -> Path:
    return tls_dir(settings) / "ca.crt"


def host_names(settings: Settings) -> list[str]:
    """Every name and address the server certificate must be valid for."""
    names = ["localhost", "127.0.0.1", "::1"]
    if settings.host not in ("0.0.0.0", "::", ""):
        names.append(settings.host)
    registry = settings.default_registry_host()
    hosts = [registry]
    if "{account}" in registry or "{region}" in registry:
        scopes = [(settings.default_account, settings.default_region), *settings.registry_ports]
        hosts = [registry.format(account=a, region=r) for a, r in scopes]
    for host in hosts:
        name = host.rsplit(":", 1)[0] if host.rsplit(":", 1)[-1].isdigit() else host
        name = name.strip("[]")
        if name and name not in names:
            names.append(name)
    return names


def server_files(settings: Settings) -> tuple[str, str]:
    """(certificate chain, private key) files to serve, made from the local CA when needed."""
    if settings.tls_cert:
        for path in (settings.tls_cert, settings.tls_key):
            if not Path(path).is_file():
                raise ValueError(f"TLS file {path} does not exist (--tls-cert/--tls-key)")
        return settings.tls_cert, settings.tls_key
    directory = tls_dir(settings)
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "server.crt", directory / "server.key"
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ca_cert, ca_key = _load_or_create_ca(directory)
        names = host_names(settings)
        if not _still_good(cert, ca_cert, names):
            _issue(cert, key, ca_cert, ca_key, names)
    return str(cert), str(key)


def server_context(settings: Settings) -> ssl.SSLContext:
    cert, key = server_files(settings)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _load_or_create_ca(directory: Path):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = directory / "ca.crt", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        return (x509.load_pem_x509_certificate(cert_path.read_bytes()),
                serialization.load_pem_private_key(key_path.read_bytes(), password=None))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ecr-emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"ecr-emulator local CA {directory.parent.name}"),
    ])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _alt_names(names: list[str]):  # type: ignore[no-untyped-def]
    from cryptography import x509

    out = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _still_good(cert_path: Path, ca_cert, names: list[str]) -> bool:  # type: ignore[no-untyped-def]
    from cryptography import x509

    if not cert_path.exists() or not cert_path.with_suffix(".key").exists():
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
        have = set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except (ValueError, TypeError, x509.ExtensionNotFound, x509.InvalidSignature):
        return False
    return set(_alt_names(names)) <= have and cert.not_valid_after_utc - _now() > RENEW_BEFORE


def _issue(cert_path: Path, key_path: Path, ca_cert, ca_key, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), private=True)
    _write(cert_path, cert.public_bytes(serialization.Encoding.PEM))
