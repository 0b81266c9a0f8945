"""Managed signing under --iam-config: ECR signs with the pusher's identity, so a push by a principal
whose identity policies do not allow signer:SignPayload on the profile is stored but its signing
FAILS with ACCESS_DENIED, in IAM's words, on the API and the registry alike."""

from __future__ import annotations

import json

import pytest

from tests.iam_world import LOGIN, PUSH, Who, client, doc
from tests.images import build_image, push_via_api, push_via_registry, registry_session
from tests.server import start_server

A = "111111111111"
PROFILE = f"arn:aws:signer:us-east-1:{A}:/signing-profiles/release"
OTHER_PROFILE = f"arn:aws:signer:us-east-1:{A}:/signing-profiles/other"
PUSH_APP = {"Effect": "Allow", "Action": PUSH, "Resource": "*"}
SIGNER = Who("AKIASIGNINGSIGNER001", "signer-secret", f"arn:aws:iam::{A}:user/signer", (doc(
    LOGIN, PUSH_APP, {"Effect": "Allow", "Action": "signer:SignPayload", "Resource": PROFILE}),))
PUSHER = Who("AKIASIGNINGPUSHER001", "pusher-secret", f"arn:aws:iam::{A}:user/pusher", (doc(LOGIN, PUSH_APP),))
DENIED = Who("AKIASIGNINGDENIED001", "denied-secret", f"arn:aws:iam::{A}:role/build", (doc(
    LOGIN, PUSH_APP, {"Effect": "Allow", "Action": "signer:*", "Resource": "*"},
    {"Effect": "Deny", "Action": "signer:SignPayload", "Resource": OTHER_PROFILE}),), session="ci")
ADMIN = "AKIAUNDECLAREDADMIN1"  # the root of account A


@pytest.fixture(scope="module")
def server(tmp_path_factory):  # type: ignore[no-untyped-def]
    base = tmp_path_factory.mktemp("signing-iam")
    (base / "iam.json").write_text(json.dumps({"principals": [w.entry() for w in (SIGNER, PUSHER, DENIED)]}))
    live = start_server(base / "data", "--iam-config", str(base / "iam.json"), "--default-account", A,
                        "--job-workers", "0")
    yield live
    live.stop()


def _statuses(admin, digest: str) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    found = admin.describe_image_signing_status(repositoryName="app", imageId={"imageDigest": digest})
    return {s["signingProfileArn"]: (s["status"], s.get("failureCode"), s.get("failureReason"))
            for s in found["signingStatuses"]}


def test_the_pushers_identity_decides_whether_the_image_is_signed(server):
    server.reset()
    admin = client(server, ADMIN)
    admin.create_repository(repositoryName="app")
    admin.put_signing_configuration(signingConfiguration={"rules": [{"signingProfileArn": PROFILE},
                                                                    {"signingProfileArn": OTHER_PROFILE}]})
    pushed = {}
    for who in (SIGNER, PUSHER, DENIED):
        pushed[who.key] = build_image()
        push_via_api(client(server, who), "app", pushed[who.key], who.arn.rsplit("/", 1)[-1])
    by_registry = build_image()
    push_via_registry(registry_session(client(server, PUSHER)), server.registry_url, "app", by_registry, "registry")
    by_root = build_image()
    push_via_api(admin, "app", by_root, "root")
    server.run_jobs()

    def refused(arn: str, profile: str, why: str) -> tuple:
        return ("FAILED", "ACCESS_DENIED",
                f"User: {arn} is not authorized to perform: signer:SignPayload on resource: {profile} {why}")

    no_allow = "because no identity-based policy allows the signer:SignPayload action"
    assert _statuses(admin, pushed[SIGNER.key].digest) == {PROFILE: ("COMPLETE", None, None),
                                                       OTHER_PROFILE: refused(SIGNER.arn, OTHER_PROFILE, no_allow)}
    for image in (pushed[PUSHER.key], by_registry):
        assert _statuses(admin, image.digest) == {PROFILE: refused(PUSHER.arn, PROFILE, no_allow),
                                                  OTHER_PROFILE: refused(PUSHER.arn, OTHER_PROFILE, no_allow)}
    role_session = f"arn:aws:sts::{A}:assumed-role/build/ci"
    assert _statuses(admin, pushed[DENIED.key].digest) == {
        PROFILE: ("COMPLETE", None, None),
        OTHER_PROFILE: refused(role_session, OTHER_PROFILE, "with an explicit deny in an identity-based policy")}
    assert {s for s, _, _ in _statuses(admin, by_root.digest).values()} == {"COMPLETE"}
    referrers = admin.list_image_referrers(repositoryName="app", subjectId={"imageDigest": pushed[PUSHER.key].digest})
    assert referrers["referrers"] == []
