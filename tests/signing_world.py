"""Shared pieces of the managed-signing tests: profile ARNs, rules, and reading statuses, signatures and
certificates back from a live server."""

from __future__ import annotations

import requests

from tests.conftest import ACCOUNT

SIGNATURE = "application/vnd.cncf.notary.signature"
WEST = "us-west-2"


def profile(name: str, region: str = "us-east-1", account: str = ACCOUNT) -> str:
    return f"arn:aws:signer:{region}:{account}:/signing-profiles/{name}"


RELEASE, AUDIT = profile("release"), profile("audit_2")


def rule(arn: str, *filters: str) -> dict:
    out: dict = {"signingProfileArn": arn}
    if filters:
        out["repositoryFilters"] = [{"filter": f, "filterType": "WILDCARD_MATCH"} for f in filters]
    return out


def configure(ecr, *rules: dict) -> dict:  # type: ignore[no-untyped-def]
    return ecr.put_signing_configuration(signingConfiguration={"rules": list(rules)})["signingConfiguration"]


def statuses(ecr, repo: str, image_id: dict) -> list[tuple]:  # type: ignore[no-untyped-def]
    found = ecr.describe_image_signing_status(repositoryName=repo, imageId=image_id)["signingStatuses"]
    return [(s["signingProfileArn"], s["status"], s.get("failureCode")) for s in found]


def signatures(ecr, repo: str, digest: str, status: str = "ACTIVE") -> list[dict]:  # type: ignore[no-untyped-def]
    return ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": digest},
                                    filter={"artifactTypes": [SIGNATURE], "artifactStatus": status})["referrers"]


def certificate(server, arn: str, part: str = "root") -> str:  # type: ignore[no-untyped-def]
    r = requests.get(f"{server.api_url}/_emulator/signing/certificates", params={"profile": arn, "part": part},
                     timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/x-pem-file"), r.text
    return r.text


def envelope(session: requests.Session, server, repo: str, signature_digest: str) -> tuple[dict, bytes]:  # type: ignore[no-untyped-def]
    base = f"{server.registry_url}/v2/{repo}"
    manifest = session.get(f"{base}/manifests/{signature_digest}", timeout=30,
                           headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}).json()
    layer = manifest["layers"][0]
    return manifest, session.get(f"{base}/blobs/{layer['digest']}", timeout=30).content
