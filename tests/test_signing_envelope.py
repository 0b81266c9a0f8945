"""The Notary Project signature the emulator makes, checked in-process against the specification by an
independent verifier (tests/notary.py: jwcrypto for the JWS, openssl for the chain)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jwcrypto.jws import InvalidJWSSignature

from ecr_emulator.core.naming import Scope
from ecr_emulator.core.signing import config, keys, notation
from tests import notary

ARN = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/release_2"
TARGET = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
          "digest": "sha256:" + "ab" * 32, "size": 1234}


def _material(arn: str = ARN) -> tuple[keys.SigningMaterial, str]:
    profile = keys.parse_profile(arn)
    assert profile is not None
    root_key_pem, root_pem = keys._make_root(profile.scope)
    root_key = serialization.load_pem_private_key(root_key_pem.encode(), None)
    root = x509.load_pem_x509_certificate(root_pem.encode())
    leaf_key_pem, leaf_pem = keys._make_leaf(profile, root_key, root)
    material = keys.SigningMaterial(serialization.load_pem_private_key(leaf_key_pem.encode(), None),
                                    (x509.load_pem_x509_certificate(leaf_pem.encode()), root))
    return material, root_pem


@pytest.fixture(scope="module")
def made() -> tuple[keys.SigningMaterial, str]:
    return _material()


def test_envelope_verifies_and_says_what_the_spec_asks(made):
    material, root_pem = made
    found = notary.verify(notation.envelope(material, TARGET, 1_800_000_000.7, "ecr-emulator/test"), root_pem)
    assert found["targetArtifact"] == TARGET
    assert found["protected"] == {
        "alg": "ES384", "cty": "application/vnd.cncf.notary.payload.v1+json",
        "crit": ["io.cncf.notary.signingScheme"], "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2027-01-15T08:00:00Z"}
    leaf = found["chain"][0]
    assert leaf.subject.rfc4514_string() == \
        "CN=release_2,OU=123456789012/us-east-1,O=ecr-emulator,L=Seattle,ST=WA,C=US"
    assert x509.ExtendedKeyUsageOID.CODE_SIGNING in leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


@pytest.mark.parametrize("when", [86_400, 253_402_214_399])  # 1970-01-02 and 9999-12-30: any emulator clock
def test_signatures_made_at_any_clock_time_lie_within_the_certificates(made, when):
    material, root_pem = made
    assert notary.verify(notation.envelope(material, TARGET, when, "x"), root_pem)["signedAt"] == when


def test_a_changed_payload_or_another_root_does_not_verify(made):
    material, root_pem = made
    doc = json.loads(notation.envelope(material, TARGET, 1_800_000_000, "x"))
    forged = dict(doc, payload=base64.urlsafe_b64encode(json.dumps(
        {"targetArtifact": {**TARGET, "digest": "sha256:" + "cd" * 32}}).encode()).rstrip(b"=").decode())
    with pytest.raises(InvalidJWSSignature):
        notary.verify(json.dumps(forged).encode(), root_pem)
    _, other_root = _material(ARN.replace("us-east-1", "eu-west-1"))
    with pytest.raises(notary.NotVerified, match="openssl verify"):
        notary.verify(json.dumps(doc).encode(), other_root)


def test_signature_manifest_is_a_notary_referrer(made):
    material, _ = made
    env = notation.envelope(material, TARGET, 1_800_000_000, "x")
    layer = {"mediaType": "application/jose+json", "digest": "sha256:" + hashlib.sha256(env).hexdigest(),
             "size": len(env)}
    manifest = json.loads(notation.signature_manifest(TARGET, layer, material.thumbprints(), 1_800_000_000))
    assert manifest["artifactType"] == "application/vnd.cncf.notary.signature"
    assert manifest["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()}
    assert manifest["layers"] == [layer] and manifest["subject"] == TARGET
    x5c = json.loads(env)["header"]["x5c"]
    assert json.loads(manifest["annotations"]["io.cncf.notary.x509chain.thumbprint#S256"]) == [
        hashlib.sha256(base64.b64decode(c)).hexdigest() for c in x5c]


@pytest.mark.parametrize(("filters", "name", "matched"), [
    (None, "anything/at-all", True),
    (["myapp/*"], "myapp/api", True), (["myapp/*"], "myapp", False), (["myapp/*"], "other/myapp/api", False),
    (["*/production"], "team/app/production", True), (["*/production"], "production", False),
    (["*prod*"], "a-prod-b", True), (["*prod*"], "staging", False),
    (["exact"], "exact", True), (["exact"], "exactly", False), (["exact"], "inexact", False),
    (["one", "two/*"], "two/x", True),
])
def test_wildcard_filters_match_whole_names(filters, name, matched):
    rule = {"signingProfileArn": ARN}
    if filters:
        rule["repositoryFilters"] = [{"filter": f, "filterType": "WILDCARD_MATCH"} for f in filters]
    assert config.matches(rule, name) is matched


def test_profiles_are_regional():
    profile = keys.parse_profile(ARN)
    assert profile.reachable_from(Scope("123456789012", "us-east-1"))
    assert not profile.reachable_from(Scope("123456789012", "us-west-2"))
    assert not keys.parse_profile(ARN.replace("arn:aws:", "arn:aws-cn:")).reachable_from(
        Scope("123456789012", "us-east-1"))
    assert keys.parse_profile("arn:aws:signer:us-east-1:123456789012:/signing-profiles/x") is None
