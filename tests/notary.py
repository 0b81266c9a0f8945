"""An independent check of Notary Project signatures, written from the specifications
(notaryproject/specifications: signature-specification.md, signature-envelope-jws.md), sharing no
code with the emulator: the JWS is verified with jwcrypto, the certificate chain with the
``openssl verify`` command against the root the user fetched, and the Notary Project's rules on
headers, algorithms and certificates are read off the parsed values here.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from jwcrypto.common import JWSEHeaderParameter
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from tests.tools import need

SCHEME = "io.cncf.notary.signingScheme"
TIME = "io.cncf.notary.signingTime"
EXPIRY = "io.cncf.notary.expiry"
AUTHENTIC_TIME = "io.cncf.notary.authenticSigningTime"
# The critical headers a verifier of the notary.x509 scheme understands (jwcrypto refuses unknown ones).
REGISTRY = {name: JWSEHeaderParameter(name, True, True, None) for name in (SCHEME, EXPIRY, AUTHENTIC_TIME)}
ALG_OF_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
RFC3339_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")


class NotVerified(AssertionError):
    pass


def _b64url_json(text: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def _check(ok: bool, why: str) -> None:
    if not ok:
        raise NotVerified(why)


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage:
    ext = cert.extensions.get_extension_for_class(x509.KeyUsage)
    _check(ext.critical, f"keyUsage of {cert.subject.rfc4514_string()} must be critical")
    return ext.value


def _check_certificates(chain: list[x509.Certificate]) -> None:
    leaf, *cas = chain
    _check(len(cas) >= 1, "the chain must end in a root certificate")
    usage = _key_usage(leaf)
    _check(usage.digital_signature and not usage.key_cert_sign and not usage.crl_sign
           and not usage.key_encipherment and not usage.data_encipherment and not usage.key_agreement,
           "the signing certificate's keyUsage must be digitalSignature only")
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None:
        forbidden = {ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE, ExtendedKeyUsageOID.SERVER_AUTH,
                     ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.EMAIL_PROTECTION,
                     ExtendedKeyUsageOID.TIME_STAMPING}
        _check(not forbidden & set(eku), "the signing certificate's extendedKeyUsage must not allow other uses")
    try:
        leaf_bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
        _check(not leaf_bc.ca, "the signing certificate must not be a CA")
    except x509.ExtensionNotFound:
        pass
    for ca in cas:
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        _check(bc.critical and bc.value.ca, "a CA certificate needs critical basicConstraints with cA true")
        _check(_key_usage(ca).key_cert_sign, "a CA certificate's keyUsage must allow keyCertSign")
    public = leaf.public_key()
    _check(isinstance(public, ec.EllipticCurvePublicKey) and public.curve.key_size >= 256,
           "the signing key must be ECDSA of at least 256 bits (the curves the Notary Project allows)")


def _openssl_verify(chain: list[x509.Certificate], root_pem: str, at: int) -> None:
    """The chain in the signature must lead to the trusted root, and be valid at the signing time."""
    need("openssl")
    with tempfile.TemporaryDirectory() as tmp:
        root, untrusted, leaf = Path(tmp, "root.pem"), Path(tmp, "chain.pem"), Path(tmp, "leaf.pem")
        root.write_text(root_pem)
        untrusted.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain[1:-1]) or b"")
        leaf.write_bytes(chain[0].public_bytes(Encoding.PEM))
        cmd = ["openssl", "verify", "-x509_strict", "-attime", str(at), "-CAfile", str(root)]
        if len(chain) > 2:
            cmd += ["-untrusted", str(untrusted)]
        proc = subprocess.run([*cmd, str(leaf)], capture_output=True, text=True, timeout=60)
        _check(proc.returncode == 0, f"openssl verify: {proc.stdout}{proc.stderr}")
    _check(chain[-1].public_bytes(Encoding.DER) == x509.load_pem_x509_certificate(root_pem.encode()).public_bytes(
        Encoding.DER), "the chain's root is not the trusted root")


def verify(envelope: bytes, root_pem: str) -> dict[str, Any]:
    """Verify a JWS signature envelope; returns ``{"targetArtifact": ..., "protected": ..., "chain": ...}``.
    Raises NotVerified (or jwcrypto's InvalidJWSSignature) when it does not hold."""
    doc = json.loads(envelope)
    _check(set(doc) == {"payload", "protected", "header", "signature"},
           f"a flattened JWS JSON envelope has exactly payload, protected, header, signature: {sorted(doc)}")
    protected = _b64url_json(doc["protected"])
    _check(protected.get("cty") == "application/vnd.cncf.notary.payload.v1+json", "cty")
    _check(protected.get(SCHEME) == "notary.x509", "signing scheme")
    _check(SCHEME in protected.get("crit", []), "the signing scheme must be a critical header")
    _check(set(protected.get("crit", [])) <= {SCHEME, EXPIRY, AUTHENTIC_TIME} & set(protected), "crit")
    _check(isinstance(protected.get(TIME), str) and RFC3339_SECONDS.match(protected[TIME]) is not None,
           "notary.x509 needs a signing time in RFC 3339 without fractional seconds")
    signed_at = int(datetime.datetime.fromisoformat(protected[TIME].replace("Z", "+00:00")).timestamp())
    chain = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in doc["header"]["x5c"]]
    _check_certificates(chain)
    _openssl_verify(chain, root_pem, signed_at)
    _check(protected.get("alg") == ALG_OF_CURVE[chain[0].public_key().curve.name],
           "alg must be the signing key's algorithm")
    jws = JWS(header_registry=REGISTRY)
    jws.deserialize(envelope.decode("utf-8"), key=JWK.from_pyca(chain[0].public_key()), alg=protected["alg"])
    payload = json.loads(jws.payload)
    _check(set(payload) == {"targetArtifact"}, "payload")
    return {"targetArtifact": payload["targetArtifact"], "protected": protected, "chain": chain,
            "signedAt": signed_at}
