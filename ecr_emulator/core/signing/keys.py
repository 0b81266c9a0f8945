"""The keys managed signing signs with: the emulator's stand-in for AWS Signer's key management.

Each registry (account, region) gets a root CA, and each signing profile a key with a code-signing
certificate issued by its registry's root: the chain Notary Project verifiers expect (the root as
the trust anchor, the leaf in the signature's ``x5c``). They are made with ``cryptography`` on first
use (a signing job, or a user fetching the certificate) and kept in the database, so every replica
signs with the same key and a certificate fetched once stays good.

Certificates follow the Notary Project's certificate requirements: the root has critical
``basicConstraints`` (CA) and ``keyUsage`` (keyCertSign); the leaf has critical ``keyUsage``
(digitalSignature only) and the code-signing extended key usage. Keys are ECDSA P-384 (signatures
``ES384``), as AWS Signer's Notation signing keys are. The certificates are valid from 1970 until
9999-12-31T23:59:59Z (RFC 5280's "no well-defined expiration date"), because the signing time is the
emulator clock, which tests move anywhere within those years: a signature made at any of them lies
within its certificate's validity.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from ecr_emulator.core.naming import Scope, partition_for
from ecr_emulator.storage.models import SigningKey
from ecr_emulator.storage.sql import insert_ignore

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey

    from ecr_emulator.core.context import Services

ROOT = "root"
PROFILE_ARN = re.compile(
    r"^arn:(?P<partition>aws(-[a-z]+)*):signer:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"/signing-profiles/(?P<name>[a-zA-Z0-9_]{2,})$"
)
NOT_BEFORE = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)
ORGANIZATION = "ecr-emulator"


@dataclass(frozen=True)
class Profile:
    """An AWS Signer signing profile, as its ARN names it."""

    arn: str
    partition: str
    region: str
    account_id: str
    name: str

    @property
    def scope(self) -> Scope:
        return Scope(self.account_id, self.region)

    def reachable_from(self, scope: Scope) -> bool:
        """AWS Signer is regional: a registry's pushes are signed by Signer in the registry's region."""
        return (self.region, self.partition) == (scope.region, partition_for(scope.region))


def parse_profile(arn: str) -> Profile | None:
    m = PROFILE_ARN.fullmatch(arn)
    if m is None or len(arn) > 200:
        return None
    return Profile(arn, m["partition"], m["region"], m["account"], m["name"])


@dataclass(frozen=True)
class SigningMaterial:
    """A profile's private key and its certificate chain, leaf first, root last."""

    key: EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]

    def _der(self) -> list[bytes]:
        from cryptography.hazmat.primitives.serialization import Encoding

        return [cert.public_bytes(Encoding.DER) for cert in self.chain]

    def x5c(self) -> list[str]:
        """The chain as JWS's ``x5c`` header holds it: base64 (not base64url) DER."""
        return [base64.b64encode(der).decode("ascii") for der in self._der()]

    def thumbprints(self) -> list[str]:
        """SHA-256 fingerprints of the chain, as the Notary Project's thumbprint annotation lists them."""
        return [hashlib.sha256(der).hexdigest() for der in self._der()]

    def pem(self, part: str = "chain") -> str:
        """PEM of the ``chain`` (leaf first, as ``x5c`` holds it), the ``root`` or the ``leaf``."""
        from cryptography.hazmat.primitives.serialization import Encoding

        certs = {"chain": self.chain, "root": self.chain[-1:], "leaf": self.chain[:1]}[part]
        return "".join(cert.public_bytes(Encoding.PEM).decode("ascii") for cert in certs)


def material(services: Services, profile: Profile) -> SigningMaterial:
    """The profile's key and chain, made on first use. Each key is made outside any transaction
    and stored with INSERT ... ON CONFLICT DO NOTHING; when two processes make one at the same
    moment, the row stored first is the key, and both read it back."""
    scope = profile.scope
    root_key, root_cert = _ensure(services, scope, ROOT, lambda: _make_root(scope))
    leaf_key, leaf_cert = _ensure(services, scope, profile.arn, lambda: _make_leaf(profile, root_key, root_cert))
    return SigningMaterial(leaf_key, (leaf_cert, root_cert))


PARTS = ("chain", "root", "leaf")


def certificates(services: Services, arn: str, part: str = "chain") -> str:
    """What a user fetches to verify signatures (the test-control API, ``ecr-emulator signing
    certificate``): PEM certificates of a profile, made now if it has signed nothing yet.
    ValueError, worded for the user, for an ARN that is not a signing profile's or an unknown part."""
    profile = parse_profile(arn)
    if profile is None:
        raise ValueError(f"{arn!r} is not a signing profile ARN "
                         "(arn:aws:signer:<region>:<account>:/signing-profiles/<name>)")
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    return material(services, profile).pem(part)


def _ensure(services: Services, scope: Scope, name: str, make: Callable[[], tuple[str, str]]):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    where = (SigningKey.account_id == scope.account_id, SigningKey.region == scope.region, SigningKey.name == name)

    def read(session):  # type: ignore[no-untyped-def]
        return session.execute(select(SigningKey.private_key, SigningKey.certificate).where(*where)).first()

    row = services.db.run(read)
    if row is None:
        key_pem, cert_pem = make()

        def store(session):  # type: ignore[no-untyped-def]
            insert_ignore(session, SigningKey, {"account_id": scope.account_id, "region": scope.region, "name": name,
                                                "private_key": key_pem, "certificate": cert_pem,
                                                "created_at": services.clock.now(session)})
            return read(session)

        row = services.db.run(store, write=True)
    return (serialization.load_pem_private_key(row[0].encode("ascii"), password=None),
            x509.load_pem_x509_certificate(row[1].encode("ascii")))


def _name(common_name: str, unit: str):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    # C, ST and O are what a Notation trust policy's x509.subject identity must name at least.
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Seattle"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _key_usage(*, sign: bool, certify: bool):  # type: ignore[no-untyped-def]
    from cryptography import x509

    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=certify, crl_sign=certify,
                         encipher_only=False, decipher_only=False)


def _pem(key, cert) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode("ascii"),
            cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def _builder(subject, issuer, public_key):  # type: ignore[no-untyped-def]
    from cryptography import x509

    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _make_root(scope: Scope) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP384R1())
    name = _name(f"ecr-emulator signing root CA {scope.account_id} {scope.region}",
                 f"{scope.account_id}/{scope.region}")
    cert = (_builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(sign=False, certify=True), critical=True)
            .sign(key, hashes.SHA384()))
    return _pem(key, cert)


def _make_leaf(profile: Profile, root_key, root_cert) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = ec.generate_private_key(ec.SECP384R1())
    cert = (_builder(_name(profile.name, f"{profile.account_id}/{profile.region}"), root_cert.subject,
                     key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(sign=True, certify=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA384()))
    return _pem(key, cert)
