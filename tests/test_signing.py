"""Managed signing against a live server: the configuration operations through boto3 and the aws CLI,
pushes (skopeo, PutImage) that queue a signing job per matching profile, the Notary Project signature
it stores as an OCI referrer (ListImageReferrers, the referrers API), verified independently
(tests/notary.py) against the certificate fetched from the emulator, and the failures."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, make_client
from tests.errors import error_of
from tests.images import (
    build_image,
    build_index,
    login_password,
    push_via_api,
    registry_session,
    write_oci_layout,
)
from tests.notary import verify
from tests.signing_world import (
    AUDIT,
    RELEASE,
    SIGNATURE,
    WEST,
    certificate,
    configure,
    envelope,
    profile,
    rule,
    signatures,
    statuses,
)
from tests.tools import need, run


@pytest.fixture
def ecr(srv):  # type: ignore[no-untyped-def]
    return make_client(srv)


# ---- the configuration


def test_configuration_put_get_delete_and_errors(ecr):
    for call in (ecr.get_signing_configuration, ecr.delete_signing_configuration):
        with pytest.raises(ClientError) as e:
            call()
        assert error_of(e) == ("SigningConfigurationNotFoundException",
                               f"Signing configuration does not exist in the registry with id '{ACCOUNT}'")
    rules = [rule(RELEASE, "myapp/*", "*/production"), rule(AUDIT)]
    assert configure(ecr, *rules) == {"rules": rules}
    got = ecr.get_signing_configuration()
    assert (got["registryId"], got["signingConfiguration"]) == (ACCOUNT, {"rules": rules})
    assert configure(ecr, rule(AUDIT)) == {"rules": [rule(AUDIT)]}  # replaced wholesale
    deleted = ecr.delete_signing_configuration()
    assert (deleted["registryId"], deleted["signingConfiguration"]) == (ACCOUNT, {"rules": [rule(AUDIT)]})
    with pytest.raises(ClientError) as e:
        ecr.get_signing_configuration()
    assert error_of(e)[0] == "SigningConfigurationNotFoundException"
    assert configure(ecr) == {"rules": []}  # no rules is a configuration that signs nothing
    assert ecr.get_signing_configuration()["signingConfiguration"] == {"rules": []}


@pytest.mark.parametrize(("config", "where"), [
    ({"rules": [rule("arn:aws:signer:us-east-1:123456789012:/signing-profiles/x")]}, "signingProfileArn"),
    ({"rules": [rule("arn:aws:signer:us-east-1:1234:/signing-profiles/release")]}, "signingProfileArn"),
    ({"rules": [rule("arn:aws:iam::123456789012:role/release")]}, "signingProfileArn"),
    ({"rules": [rule(profile("p" * 200))]}, "signingProfileArn"),
    ({"rules": [rule(RELEASE)] * 11}, "rules"),
    ({"rules": [rule(RELEASE, "UPPER/*")]}, "filter"),
    ({"rules": [rule(RELEASE, "trailing/")]}, "filter"),
    ({"rules": [rule(RELEASE, *[f"r{i}" for i in range(101)])]}, "repositoryFilters"),
    ({"rules": [{"signingProfileArn": RELEASE, "repositoryFilters": []}]}, "repositoryFilters"),
    ({"rules": [{"signingProfileArn": RELEASE,
                 "repositoryFilters": [{"filter": "a", "filterType": "PREFIX_MATCH"}]}]}, "filterType"),
])
def test_configuration_validation(srv, config, where):
    # botocore would refuse some of these itself (min lengths), so send them as a raw client would
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"signingConfiguration": config})
    req = AWSRequest("POST", srv.api_url + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.PutSigningConfiguration"})
    SigV4Auth(Credentials("testing", "testing"), "ecr", "us-east-1").add_auth(req)
    r = requests.post(req.url, data=body, headers=dict(req.headers), timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["__type"] == "InvalidParameterException" and where in r.json()["message"], r.text
    with pytest.raises(ClientError):
        make_client(srv).get_signing_configuration()  # nothing was stored


def test_configuration_with_the_aws_cli(srv):
    def aws(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
        env.pop("AWS_PROFILE", None)
        proc = subprocess.run(["aws", "ecr", *args, "--endpoint-url", srv.api_url, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert not check or proc.returncode == 0, proc.stderr
        return proc

    need("aws")
    failed = aws("get-signing-configuration", check=False)
    assert failed.returncode != 0 and "SigningConfigurationNotFoundException" in failed.stderr
    config = {"rules": [rule(RELEASE, "app*")]}
    put = json.loads(aws("put-signing-configuration", "--signing-configuration", json.dumps(config)).stdout)
    assert put == {"signingConfiguration": config}
    assert json.loads(aws("get-signing-configuration").stdout) == {"registryId": ACCOUNT,
                                                                  "signingConfiguration": config}
    bad = aws("put-signing-configuration", "--signing-configuration",
              json.dumps({"rules": [rule("arn:aws:signer:us-east-1:123456789012:/signing-profiles/-")]}), check=False)
    assert bad.returncode != 0 and "InvalidParameterException" in bad.stderr
    missing = aws("describe-image-signing-status", "--repository-name", "nope", "--image-id", "imageTag=v1",
                  check=False)
    assert "RepositoryNotFoundException" in missing.stderr
    assert json.loads(aws("delete-signing-configuration").stdout)["signingConfiguration"] == config


# ---- signing on push


def test_skopeo_push_is_signed_once_per_profile_and_verifies_independently(srv, ecr, tmp_path):
    need("skopeo")
    ecr.create_repository(repositoryName="team/app/production")
    configure(ecr, rule(RELEASE, "team/*"), rule(AUDIT, "*/production"), rule(RELEASE), rule(profile("unused"), "x"))
    image = build_image()
    layout = write_oci_layout(tmp_path / "src", {"v1": image})
    auth = {"REGISTRY_AUTH_FILE": str(tmp_path / "auth.json")}
    run("skopeo", "login", "--tls-verify=false", "-u", "AWS", "--password-stdin", srv.registry,
        input=login_password(ecr), env=auth)
    run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1",
        f"docker://{srv.registry}/team/app/production:v1", env=auth)
    repo, subject = "team/app/production", {"imageTag": "v1"}
    assert statuses(ecr, repo, subject) == [(AUDIT, "IN_PROGRESS", None), (RELEASE, "IN_PROGRESS", None)]
    assert signatures(ecr, repo, image.digest) == []
    signed_at = srv.control("clock")["now"]
    assert srv.run_jobs() == {"succeeded": 2, "failed": 0}
    answer = ecr.describe_image_signing_status(repositoryName=repo, imageId=subject)
    assert (answer["repositoryName"], answer["registryId"], answer["imageId"]) == (
        repo, ACCOUNT, {"imageDigest": image.digest, "imageTag": "v1"})
    assert statuses(ecr, repo, subject) == [(AUDIT, "COMPLETE", None), (RELEASE, "COMPLETE", None)]

    found = signatures(ecr, repo, image.digest)
    assert len(found) == 2 and {r["mediaType"] for r in found} == {"application/vnd.oci.image.manifest.v1+json"}
    session = registry_session(ecr)
    index = session.get(f"{srv.registry_url}/v2/{repo}/referrers/{image.digest}", timeout=30,
                        params={"artifactType": SIGNATURE})
    assert index.status_code == 200 and index.headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
    assert sorted(d["digest"] for d in index.json()["manifests"]) == sorted(r["digest"] for r in found)
    subject_descriptor = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
    leaves = {}
    for ref in found:
        manifest, env = envelope(session, srv, repo, ref["digest"])
        assert manifest["artifactType"] == SIGNATURE and manifest["subject"] == subject_descriptor
        assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
        assert manifest["layers"][0]["mediaType"] == "application/jose+json"
        result = verify(env, certificate(srv, RELEASE))  # one root per registry: either profile's chain ends in it
        assert result["targetArtifact"] == subject_descriptor
        assert abs(result["signedAt"] - signed_at) < 60
        leaves[result["chain"][0].subject.rfc4514_string()] = ref["annotations"]
    assert sorted(leaves) == ["CN=audit_2,OU=123456789012/us-east-1,O=ecr-emulator,L=Seattle,ST=WA,C=US",
                              "CN=release,OU=123456789012/us-east-1,O=ecr-emulator,L=Seattle,ST=WA,C=US"]
    # each profile's leaf, as fetched, is the one in its signature's thumbprints
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    for arn, cn in ((RELEASE, "release"), (AUDIT, "audit_2")):
        leaf = x509.load_pem_x509_certificate(certificate(srv, arn, "leaf").encode())
        thumbprints = json.loads(next(a for name, a in leaves.items() if name.startswith(f"CN={cn},"))
                                 ["io.cncf.notary.x509chain.thumbprint#S256"])
        assert thumbprints[0] == leaf.fingerprint(hashes.SHA256()).hex()


def test_multi_arch_index_and_its_children_are_each_signed(srv, ecr, tmp_path):
    ecr.create_repository(repositoryName="multi")
    configure(ecr, rule(RELEASE, "multi"))
    index = build_index([build_image(architecture="amd64"), build_image(architecture="arm64")])
    push_via_api(ecr, "multi", index, "v1")
    srv.run_jobs()
    root = certificate(srv, RELEASE)
    session = registry_session(ecr)
    for image in (index, *index.children):
        assert statuses(ecr, "multi", {"imageDigest": image.digest}) == [(RELEASE, "COMPLETE", None)]
        (ref,) = signatures(ecr, "multi", image.digest)
        _, env = envelope(session, srv, "multi", ref["digest"])
        assert verify(env, root)["targetArtifact"] == {"mediaType": image.media_type, "digest": image.digest,
                                                       "size": len(image.manifest)}


def test_repositories_no_rule_matches_get_no_status(srv, ecr):
    for name in ("app", "myapp", "other/app"):
        ecr.create_repository(repositoryName=name)
    configure(ecr, rule(RELEASE, "myapp/*", "*/api"))
    image = build_image()
    push_via_api(ecr, "app", image, "v1")
    assert srv.run_jobs() == {"succeeded": 0, "failed": 0}
    assert statuses(ecr, "app", {"imageTag": "v1"}) == []
    assert signatures(ecr, "app", image.digest) == []
    with pytest.raises(ClientError) as e:
        ecr.describe_image_signing_status(repositoryName="app", imageId={"imageTag": "nope"})
    assert error_of(e)[0] == "ImageNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.describe_image_signing_status(repositoryName="app", imageId={"imageDigest": "not-a-digest"})
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.describe_image_signing_status(repositoryName="missing", imageId={"imageTag": "v1"})
    assert error_of(e)[0] == "RepositoryNotFoundException"


def test_deleting_the_configuration_stops_signing_and_keeps_signatures(srv, ecr):
    ecr.create_repository(repositoryName="app")
    configure(ecr, rule(RELEASE))
    first = build_image()
    push_via_api(ecr, "app", first, "v1")
    srv.run_jobs()
    ecr.delete_signing_configuration()
    second = build_image()
    push_via_api(ecr, "app", second, "v2")
    assert srv.run_jobs() == {"succeeded": 0, "failed": 0}
    assert statuses(ecr, "app", {"imageTag": "v2"}) == [] and signatures(ecr, "app", second.digest) == []
    assert statuses(ecr, "app", {"imageTag": "v1"}) == [(RELEASE, "COMPLETE", None)]
    (ref,) = signatures(ecr, "app", first.digest)
    _, env = envelope(registry_session(ecr), srv, "app", ref["digest"])
    assert verify(env, certificate(srv, RELEASE))["targetArtifact"]["digest"] == first.digest


def test_profiles_the_push_cannot_use_fail_with_a_code_and_reason(srv, ecr):
    elsewhere, theirs = profile("elsewhere", region=WEST), profile("theirs", account="210987654321")
    ecr.create_repository(repositoryName="app")
    configure(ecr, rule(elsewhere), rule(theirs), rule(RELEASE))
    image = build_image()
    push_via_api(ecr, "app", image, "v1")
    assert {s for _, s, _ in statuses(ecr, "app", {"imageTag": "v1"})} == {"IN_PROGRESS"}
    srv.run_jobs()
    found = {s["signingProfileArn"]: s for s in
             ecr.describe_image_signing_status(repositoryName="app", imageId={"imageTag": "v1"})["signingStatuses"]}
    assert found[RELEASE] == {"signingProfileArn": RELEASE, "status": "COMPLETE"}
    assert (found[elsewhere]["status"], found[elsewhere]["failureCode"]) == ("FAILED", "SIGNING_PROFILE_NOT_FOUND")
    assert "regional" in found[elsewhere]["failureReason"] and "us-east-1" in found[elsewhere]["failureReason"]
    assert (found[theirs]["status"], found[theirs]["failureCode"]) == ("FAILED", "ACCESS_DENIED")
    assert found[theirs]["failureReason"] == (
        f"User: arn:aws:iam::{ACCOUNT}:root is not authorized to perform: signer:SignPayload on resource: {theirs} "
        "because no resource-based policy allows the signer:SignPayload action")
    assert len(signatures(ecr, "app", image.digest)) == 1


def test_which_pushes_sign(srv, ecr):
    """A retag of a signed image signs nothing again; a tag on an image the profile has not signed, and
    a re-push that restores an archived image whose signature is archived too, do."""
    ecr.create_repository(repositoryName="app")
    older = build_image()
    push_via_api(ecr, "app", older, "old")  # before there was a configuration
    configure(ecr, rule(RELEASE))
    image = build_image()
    push_via_api(ecr, "app", image, "v1")
    srv.run_jobs()
    (first,) = signatures(ecr, "app", image.digest)

    ecr.put_image(repositoryName="app", imageManifest=image.manifest.decode(), imageTag="v2")
    assert srv.run_jobs() == {"succeeded": 0, "failed": 0}
    assert signatures(ecr, "app", image.digest) == [first]

    assert statuses(ecr, "app", {"imageTag": "old"}) == []
    ecr.put_image(repositoryName="app", imageManifest=older.manifest.decode(), imageTag="old-retagged")
    assert statuses(ecr, "app", {"imageTag": "old"}) == [(RELEASE, "IN_PROGRESS", None)]
    srv.run_jobs()
    assert statuses(ecr, "app", {"imageTag": "old"}) == [(RELEASE, "COMPLETE", None)]
    assert len(signatures(ecr, "app", older.digest)) == 1

    def archive(digest: str) -> None:
        ecr.update_image_storage_class(repositoryName="app", imageId={"imageDigest": digest},
                                       targetStorageClass="ARCHIVE")

    archive(image.digest)  # the signature stays active: a restoring push has nothing to sign
    push_via_api(ecr, "app", image, "v1")
    assert srv.run_jobs() == {"succeeded": 0, "failed": 0}
    assert signatures(ecr, "app", image.digest) == [first]
    archive(image.digest)
    archive(first["digest"])
    push_via_api(ecr, "app", image, "v1")
    assert statuses(ecr, "app", {"imageTag": "v1"}) == [(RELEASE, "IN_PROGRESS", None)]
    srv.run_jobs()
    (second,) = signatures(ecr, "app", image.digest)
    assert second["digest"] != first["digest"]
    assert [r["digest"] for r in signatures(ecr, "app", image.digest, "ARCHIVED")] == [first["digest"]]


def test_signatures_follow_their_subject_through_replication_and_deletion(srv, ecr):
    west = make_client(srv, region=WEST)
    ecr.create_repository(repositoryName="app")
    ecr.put_replication_configuration(replicationConfiguration={
        "rules": [{"destinations": [{"region": WEST, "registryId": ACCOUNT}]}]})
    configure(ecr, rule(RELEASE))
    configure(west, rule(profile("west", region=WEST)))  # the destination signs its own pushes, not copies
    image = build_image()
    push_via_api(ecr, "app", image, "v1")
    srv.run_jobs()
    assert statuses(west, "app", {"imageTag": "v1"}) == []
    (copied,) = signatures(west, "app", image.digest)
    assert copied["digest"] == signatures(ecr, "app", image.digest)[0]["digest"]
    west_session = registry_session(west)
    west_session.headers["Host"] = f"{ACCOUNT}.dkr.ecr.{WEST}.{srv.registry}"
    _, env = envelope(west_session, srv, "app", copied["digest"])
    assert verify(env, certificate(srv, RELEASE))["targetArtifact"]["digest"] == image.digest

    ecr.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": image.digest}])
    srv.run_jobs()
    assert signatures(ecr, "app", image.digest, "ANY") == []
    assert [d["imageDigest"] for d in ecr.describe_images(repositoryName="app")["imageDetails"]] == []
