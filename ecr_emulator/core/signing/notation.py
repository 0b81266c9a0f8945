"""A Notary Project signature of one manifest: the JWS envelope and the OCI referrer that holds it.

Pure functions of (key and chain, the signed manifest's descriptor, the signing time), following the
Notary Project specifications (signature-specification.md, signature-envelope-jws.md):

- the payload (``application/vnd.cncf.notary.payload.v1+json``) is ``{"targetArtifact": <descriptor>}``,
  the descriptor of the signed manifest (media type, digest, size of its exact bytes);
- the envelope is a flattened JWS JSON serialization: protected headers ``alg``, ``cty``, ``crit``
  (listing ``io.cncf.notary.signingScheme``), ``io.cncf.notary.signingScheme`` ``notary.x509`` and
  ``io.cncf.notary.signingTime``; unprotected ``x5c`` (the chain, leaf first) and
  ``io.cncf.notary.signingAgent``; the signature over ``BASE64URL(protected) '.' BASE64URL(payload)``;
- the signature manifest is an OCI 1.1 image manifest with ``artifactType``
  ``application/vnd.cncf.notary.signature``, the empty config, one ``application/jose+json`` layer
  (the envelope), the signed manifest as ``subject``, and the chain's thumbprints annotation.

The JWS is assembled here with ``cryptography`` (an ECDSA signature, converted from DER to JWS's
fixed-width r||s): it is a few lines, and the tests verify it with an independent JOSE library.
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from ecr_emulator.core.signing.keys import SigningMaterial

SIGNATURE_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
ENVELOPE_MEDIA_TYPE = "application/jose+json"
PAYLOAD_MEDIA_TYPE = "application/vnd.cncf.notary.payload.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
SIGNING_SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
SIGNING_AGENT = "io.cncf.notary.signingAgent"
THUMBPRINTS = "io.cncf.notary.x509chain.thumbprint#S256"
CREATED = "org.opencontainers.image.created"
# The JWS algorithm of each curve the Notary Project allows (signature-envelope-jws.md).
ALGORITHMS = {"secp256r1": ("ES256", "SHA256"), "secp384r1": ("ES384", "SHA384"), "secp521r1": ("ES512", "SHA512")}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _compact(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def rfc3339(epoch: float) -> str:
    """A signing time as the spec wants it: RFC 3339, UTC, no fractional seconds."""
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope(material: SigningMaterial, target: dict[str, Any], signing_time: float, agent: str) -> bytes:
    """The JWS envelope signing ``target`` (an OCI descriptor) at ``signing_time``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    curve = material.key.curve
    alg, hash_name = ALGORITHMS[curve.name]
    protected = _b64url(_compact({
        "alg": alg,
        "cty": PAYLOAD_MEDIA_TYPE,
        "crit": [SIGNING_SCHEME],
        SIGNING_SCHEME: "notary.x509",
        SIGNING_TIME: rfc3339(signing_time),
    }))
    payload = _b64url(_compact({"targetArtifact": target}))
    der = material.key.sign(f"{protected}.{payload}".encode("ascii"), ec.ECDSA(getattr(hashes, hash_name)()))
    r, s = decode_dss_signature(der)
    width = (curve.key_size + 7) // 8
    return _compact({
        "payload": payload,
        "protected": protected,
        "header": {"x5c": material.x5c(), SIGNING_AGENT: agent},
        "signature": _b64url(r.to_bytes(width, "big") + s.to_bytes(width, "big")),
    })


def signature_manifest(target: dict[str, Any], envelope_descriptor: dict[str, Any], thumbprints: list[str],
                       signing_time: float) -> bytes:
    """The OCI manifest that stores the envelope as a referrer of ``target``."""
    return _compact({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SIGNATURE_ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": EMPTY_DIGEST, "size": len(EMPTY_CONFIG)},
        "layers": [envelope_descriptor],
        "subject": target,
        "annotations": {THUMBPRINTS: json.dumps(thumbprints, separators=(",", ":")),
                        CREATED: rfc3339(signing_time)},
    })
