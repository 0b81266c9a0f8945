"""Replication through boto3 and real registry clients: configuration, copies to other regions (same
digest, same bytes, tags, referrers, index children), templates applied to the repositories it
creates, no re-replication, delete replication, DescribeImageReplicationStatus, a restart in the
middle, and backfills."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, make_client
from tests.errors import error_of
from tests.images import (
    build_artifact,
    build_image,
    build_index,
    push_via_api,
    push_via_registry,
    registry_session,
    write_oci_layout,
)
from tests.server import eventually, start_server
from tests.tools import need, run

WEST, EU = "us-west-2", "eu-west-1"


@pytest.fixture
def east(srv):  # type: ignore[no-untyped-def]
    return make_client(srv)


def rule(*regions: str, filters: list[str] | None = None, deletes: bool | None = None, account: str = ACCOUNT) -> dict:
    out: dict = {"destinations": [{"region": r, "registryId": account} for r in regions]}
    if filters:
        out["repositoryFilters"] = [{"filter": f, "filterType": "PREFIX_MATCH"} for f in filters]
    if deletes is not None:
        out["deleteReplication"] = {"enabled": deletes}
    return out


def configure(ecr, *rules: dict) -> dict:  # type: ignore[no-untyped-def]
    return ecr.put_replication_configuration(replicationConfiguration={"rules": list(rules)})


class Region:
    """The registry of one (account, region): boto3, and the registry listener addressed by Host."""

    def __init__(self, server, region: str, account: str = ACCOUNT) -> None:  # type: ignore[no-untyped-def]
        self.server, self.region, self.account = server, region, account
        self.ecr = make_client(server, access_key=account if account != ACCOUNT else "testing", region=region)
        self.session = registry_session(self.ecr)
        default = (account, region) == (ACCOUNT, "us-east-1")
        self.session.headers["Host"] = server.registry if default else \
            f"{account}.dkr.ecr.{region}.{server.registry}"

    def blob(self, repo: str, digest: str) -> bytes:
        r = self.session.get(f"{self.server.registry_url}/v2/{repo}/blobs/{digest}", timeout=60)
        assert r.status_code == 200, (self.region, repo, digest, r.status_code, r.text[:200])
        return r.content

    def manifest(self, repo: str, reference: str) -> requests.Response:
        return self.session.get(f"{self.server.registry_url}/v2/{repo}/manifests/{reference}", timeout=60,
                                headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                                   "application/vnd.oci.image.index.v1+json"})

    def digests(self, repo: str) -> dict[str, list[str]]:
        try:
            details = self.ecr.describe_images(repositoryName=repo)["imageDetails"]
        except ClientError:
            return {}
        return {d["imageDigest"]: sorted(d.get("imageTags", [])) for d in details}


def test_describe_registry_and_configuration_validation(ecr):
    fresh = ecr.describe_registry()
    assert (fresh["registryId"], fresh["replicationConfiguration"]) == (ACCOUNT, {"rules": []})
    echoed = configure(ecr, rule(WEST, filters=["app"], deletes=True), rule(EU, WEST))
    assert echoed["replicationConfiguration"]["rules"][1]["destinations"] == [
        {"region": EU, "registryId": ACCOUNT}, {"region": WEST, "registryId": ACCOUNT}]
    assert ecr.describe_registry()["replicationConfiguration"] == echoed["replicationConfiguration"]
    bad = [
        {"rules": [rule("us-east-1")]},  # the source registry itself
        {"rules": [rule(*[f"us-west-{i}" for i in range(1, 27)])]},  # 26 unique destinations
        {"rules": [rule(WEST, filters=["UPPER"])]},
        {"rules": [rule(WEST)] * 26},
        {"rules": [{"destinations": [{"region": WEST, "registryId": "123"}]}]},
    ]
    for config in bad:
        with pytest.raises(ClientError) as e:
            ecr.put_replication_configuration(replicationConfiguration=config)
        assert error_of(e)[0] == "InvalidParameterException", config
    configure(ecr)  # {"rules": []} turns replication off
    assert ecr.describe_registry()["replicationConfiguration"] == {"rules": []}


def test_pushes_after_configuration_reach_every_matching_region(server, ecr, skopeo, tmp_path):
    east, west, eu = Region(server, "us-east-1"), Region(server, WEST), Region(server, EU)
    ecr.create_repository(repositoryName="app/api")
    ecr.create_repository(repositoryName="other")
    before = build_image()
    push_via_api(ecr, "app/api", before, "old")  # pushed before replication: never copied
    configure(ecr, rule(WEST, filters=["app/"]), rule(EU))
    image = build_image()
    layout = write_oci_layout(tmp_path / "src", {"v1": image})
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{server.registry}/app/api:v1")
    push_via_api(ecr, "other", build_image(), "x")
    status = ecr.describe_image_replication_status(repositoryName="app/api", imageId={"imageTag": "v1"})
    assert {s["region"] for s in status["replicationStatuses"]} == {WEST, EU}  # queued, or already done
    assert {s["status"] for s in status["replicationStatuses"]} <= {"IN_PROGRESS", "COMPLETE"}
    server.run_jobs()  # background workers may hold some of the jobs: wait for the statuses

    def done():  # type: ignore[no-untyped-def]
        found = ecr.describe_image_replication_status(repositoryName="app/api", imageId={"imageTag": "v1"})
        return found if {s["status"] for s in found["replicationStatuses"]} == {"COMPLETE"} else None

    status = eventually(done)
    eventually(lambda: eu.digests("other"))
    assert status["imageId"] == {"imageDigest": image.digest, "imageTag": "v1"}
    assert sorted((s["region"], s["registryId"], s["status"]) for s in status["replicationStatuses"]) == [
        (EU, ACCOUNT, "COMPLETE"), (WEST, ACCOUNT, "COMPLETE")]
    assert ecr.describe_image_replication_status(repositoryName="app/api", imageId={"imageTag": "old"})[
        "replicationStatuses"] == []
    for region in (west, eu):
        assert region.digests("app/api") == {image.digest: ["v1"]}
        assert region.manifest("app/api", "v1").content == image.manifest  # same digest: same bytes
        for blob in image.blobs:
            assert region.blob("app/api", blob.digest) == blob.data
    assert west.digests("other") == {} and set(eu.digests("other"))
    # pulled back with skopeo from the source, byte for byte
    skopeo("copy", "--src-tls-verify=false", f"docker://{server.registry}/app/api:v1", f"oci:{tmp_path / 'dst'}:v1")
    stored = tmp_path / "dst" / "blobs" / "sha256"
    assert all((stored / b.digest.split(":")[1]).read_bytes() == b.data for b in image.blobs)
    assert east.digests("app/api") == {before.digest: ["old"], image.digest: ["v1"]}


def test_replicated_images_are_not_replicated_on_and_retags_follow(srv, east):
    west = Region(srv, WEST)
    configure(east, rule(WEST))
    configure(west.ecr, rule(EU))  # us-west-2 -> eu-west-1: a copy arriving in us-west-2 stops there
    east.create_repository(repositoryName="chain")
    image = build_image()
    push_via_api(east, "chain", image, "v1")
    srv.run_jobs()
    east.put_image(repositoryName="chain", imageTag="v2", imageManifest=image.manifest.decode())  # a retag
    srv.run_jobs()
    assert west.digests("chain") == {image.digest: ["v1", "v2"]}
    assert Region(srv, EU).digests("chain") == {}
    assert west.ecr.describe_image_replication_status(repositoryName="chain", imageId={"imageTag": "v1"})[
        "replicationStatuses"] == []


def test_destination_repositories_come_from_replication_templates_and_keep_immutable_tags(srv, east):
    west = Region(srv, WEST)
    west.ecr.create_repository_creation_template(prefix="tpl", appliedFor=["REPLICATION"],
                                                 imageTagMutability="IMMUTABLE")
    west.ecr.create_repository(repositoryName="pinned", imageTagMutability="IMMUTABLE")
    held = build_image()
    push_via_api(west.ecr, "pinned", held, "v1")
    configure(east, rule(WEST))
    for name in ("tpl/app", "plain", "pinned"):
        east.create_repository(repositoryName=name)
    moved = build_image()
    for name in ("tpl/app", "plain", "pinned"):
        push_via_api(east, name, moved, "v1")
    srv.run_jobs()
    repos = {r["repositoryName"]: r for r in west.ecr.describe_repositories()["repositories"]}
    assert repos["tpl/app"]["imageTagMutability"] == "IMMUTABLE"
    assert repos["plain"]["imageTagMutability"] == "MUTABLE"
    assert west.digests("pinned") == {held.digest: ["v1"], moved.digest: []}  # copied, without the tag
    status = east.describe_image_replication_status(repositoryName="pinned", imageId={"imageTag": "v1"})
    assert status["replicationStatuses"][0]["status"] == "COMPLETE"


def test_index_children_and_referrers_follow(srv, east):
    west = Region(srv, WEST)
    configure(east, rule(WEST))
    east.create_repository(repositoryName="multi")
    children = [build_image(), build_image()]
    index = build_index(children)
    signature = build_artifact(index, "application/vnd.dev.cosign.artifact.sig.v1+json", b"signature")
    session = registry_session(east)
    push_via_registry(session, srv.registry_url, "multi", index, "latest")
    push_via_registry(session, srv.registry_url, "multi", signature)
    srv.run_jobs()
    copied = west.digests("multi")
    assert set(copied) == {index.digest, signature.digest, *(c.digest for c in children)}
    assert copied[index.digest] == ["latest"]
    referrers = west.session.get(f"{srv.registry_url}/v2/multi/referrers/{index.digest}").json()
    assert [m["digest"] for m in referrers["manifests"]] == [signature.digest]


def test_deletes_replicate_only_when_the_rule_says_so(srv, east):
    west, eu = Region(srv, WEST), Region(srv, EU)
    configure(east, rule(WEST, deletes=True), rule(EU))
    east.create_repository(repositoryName="gone")
    keep, drop = build_image(), build_image()
    push_via_api(east, "gone", keep, "a")
    east.put_image(repositoryName="gone", imageTag="b", imageManifest=keep.manifest.decode())
    push_via_api(east, "gone", drop, "c")
    srv.run_jobs()
    assert west.digests("gone") == eu.digests("gone") == {keep.digest: ["a", "b"], drop.digest: ["c"]}
    east.batch_delete_image(repositoryName="gone", imageIds=[{"imageTag": "b"}, {"imageDigest": drop.digest}])
    srv.run_jobs()
    assert west.digests("gone") == {keep.digest: ["a"]}
    assert eu.digests("gone") == {keep.digest: ["a", "b"], drop.digest: ["c"]}


def test_cross_account_replication_needs_the_destination_registry_policy(srv, east):
    """Account A replicates to account B: refused (FAILED) until B's registry policy allows A
    ecr:ReplicateImage, and ecr:CreateRepository for a repository B does not have yet."""
    other = "999988887777"
    b = Region(srv, "us-east-1", account=other)
    configure(east, rule("us-east-1", account=other))
    east.create_repository(repositoryName="shared")
    first, second, third = build_image(), build_image(), build_image()
    push_via_api(east, "shared", first, "v1")
    srv.run_jobs()
    status = east.describe_image_replication_status(repositoryName="shared", imageId={"imageTag": "v1"})
    assert status["replicationStatuses"] == [{"region": "us-east-1", "registryId": other, "status": "FAILED",
                                              "failureCode": "ACCESS_DENIED"}]
    statement = {"Sid": "replication", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                 "Action": ["ecr:ReplicateImage"], "Resource": f"arn:aws:ecr:us-east-1:{other}:repository/*"}
    b.ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    push_via_api(east, "shared", second, "v2")
    srv.run_jobs()
    assert east.describe_image_replication_status(repositoryName="shared", imageId={"imageTag": "v2"})[
        "replicationStatuses"][0]["status"] == "FAILED"  # the repository is missing and may not be created
    statement["Action"].append("ecr:CreateRepository")
    b.ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    push_via_api(east, "shared", third, "v3")
    srv.run_jobs()
    assert east.describe_image_replication_status(repositoryName="shared", imageId={"imageTag": "v3"})[
        "replicationStatuses"][0]["status"] == "COMPLETE"
    assert b.digests("shared") == {third.digest: ["v3"]}
    for blob in third.blobs:
        assert b.blob("shared", blob.digest) == blob.data


def test_a_restart_in_the_middle_of_replication_loses_nothing(tmp_path):
    """Copies queued before a restart run after it; then skopeo pulls the copy from the
    destination registry (on a port of its own) and it is byte-identical to the source."""
    need("skopeo")
    data, ports = tmp_path / "data", ("--registry-port-map", f"{ACCOUNT}/{WEST}=0")
    first = start_server(data, "--job-workers", "0", *ports)
    try:
        ecr = make_client(first)
        configure(ecr, rule(WEST))
        ecr.create_repository(repositoryName="durable")
        images = [build_image() for _ in range(3)]
        for i, image in enumerate(images):
            push_via_api(ecr, "durable", image, f"v{i}")
    finally:
        first.stop()
    second = start_server(data, "--job-workers", "0", *ports)
    try:
        second.run_jobs()
        west = Region(second, WEST)
        assert west.digests("durable") == {image.digest: [f"v{i}"] for i, image in enumerate(images)}
        uri = west.ecr.describe_repositories()["repositories"][0]["repositoryUri"]  # localhost:<port>/durable
        authfile = tmp_path / "auth.json"
        password = base64.b64decode(west.ecr.get_authorization_token()["authorizationData"][0]
                                    ["authorizationToken"]).decode().split(":", 1)[1]
        run("skopeo", "login", "--tls-verify=false", "--authfile", str(authfile), "-u", "AWS", "--password-stdin",
            uri.split("/")[0], input=password)
        for i, image in enumerate(images):
            out = tmp_path / f"copy-{i}"
            run("skopeo", "copy", "--src-tls-verify=false", "--src-authfile", str(authfile), f"docker://{uri}:v{i}",
                f"oci:{out}:v{i}")
            stored = out / "blobs" / "sha256"
            assert (stored / image.digest.split(":")[1]).read_bytes() == image.manifest
            assert all((stored / b.digest.split(":")[1]).read_bytes() == b.data for b in image.blobs)
    finally:
        second.stop()


def test_backfill_copies_what_was_pushed_before(srv, east):
    west = Region(srv, WEST)
    east.create_repository(repositoryName="bf/app")
    east.create_repository(repositoryName="skip")
    old = [build_image() for _ in range(3)]
    for i, image in enumerate(old):
        push_via_api(east, "bf/app", image, f"v{i}")
    east.put_image(repositoryName="bf/app", imageTag="also", imageManifest=old[0].manifest.decode())
    push_via_api(east, "skip", build_image(), "x")
    with pytest.raises(ClientError) as e:  # the destination must be configured first
        east.start_replication_backfill(destination={"region": WEST, "registryId": ACCOUNT})
    assert error_of(e)[0] == "ValidationException"
    configure(east, rule(WEST, filters=["bf/"]), rule(EU, filters=["bf/"]))
    started = east.start_replication_backfill(destination={"region": WEST, "registryId": ACCOUNT})
    assert started["status"] == "PREPARING" and started["destination"] == {"region": WEST, "registryId": ACCOUNT}
    with pytest.raises(ClientError) as e:
        east.start_replication_backfill(destination={"region": WEST, "registryId": ACCOUNT})
    assert error_of(e)[0] == "ReplicationBackfillInProgressException"
    early = east.describe_replication_backfill_results(replicationBackfillId=started["replicationBackfillId"])
    assert early["status"] in ("PREPARING", "IN_PROGRESS", "COMPLETE")  # background workers may be quick
    assert ("results" in early) == (early["status"] == "COMPLETE")  # results only once it has ended
    srv.run_jobs()
    done = east.describe_replication_backfill_results(replicationBackfillId=started["replicationBackfillId"])
    assert done["status"] == "COMPLETE" and done["endedAt"]
    assert done["progress"] == {"totalReplicationCount": 4, "completedReplicationCount": 4,
                                "failedReplicationCount": 0, "failureCodes": []}
    assert sorted((r["imageId"]["imageDigest"], r["imageId"].get("imageTag"), r["status"]) for r in done["results"]) \
        == sorted([(old[0].digest, "also", "COMPLETE")] + [(img.digest, f"v{i}", "COMPLETE") for i, img in enumerate(old)])
    assert west.digests("bf/app") == {old[0].digest: ["also", "v0"], old[1].digest: ["v1"], old[2].digest: ["v2"]}
    assert west.digests("skip") == {}
    listed = east.list_replication_backfills()["backfills"]
    assert [(b["replicationBackfillId"], b["status"]) for b in listed] == [(started["replicationBackfillId"], "COMPLETE")]
    with pytest.raises(ClientError) as e:
        east.stop_replication_backfill(replicationBackfillId=started["replicationBackfillId"])
    assert error_of(e)[0] == "ReplicationBackfillInvalidStatusException"
    with pytest.raises(ClientError) as e:
        east.describe_replication_backfill_results(replicationBackfillId="00000000-0000-4000-8000-000000000000")
    assert error_of(e)[0] == "ReplicationBackfillNotFoundException"


def test_backfill_stopped_half_way(lserver):
    """On a server whose jobs run only when asked: prepare, make two copies, stop, and the rest
    are skipped."""
    lserver.reset()
    ecr = make_client(lserver)
    ecr.create_repository(repositoryName="half")
    for i in range(6):
        push_via_api(ecr, "half", build_image(), f"v{i}")
    configure(ecr, rule(WEST))
    backfill_id = ecr.start_replication_backfill(destination={"region": WEST, "registryId": ACCOUNT})[
        "replicationBackfillId"]
    assert lserver.control("jobs/run", {"max": 1}) == {"succeeded": 1, "failed": 0}  # the preparation
    running = ecr.list_replication_backfills()["backfills"][0]
    assert running["status"] == "IN_PROGRESS" and running["progress"]["totalReplicationCount"] == 6
    lserver.control("jobs/run", {"max": 2})  # two copies
    assert ecr.stop_replication_backfill(replicationBackfillId=backfill_id)["status"] == "STOPPING"
    assert "results" not in ecr.describe_replication_backfill_results(replicationBackfillId=backfill_id)
    lserver.run_jobs()
    final = ecr.describe_replication_backfill_results(replicationBackfillId=backfill_id)
    assert final["status"] == "STOPPED" and final["endedAt"]
    assert final["progress"]["completedReplicationCount"] == 2 and len(final["results"]) == 2
    assert len(Region(lserver, WEST).digests("half")) == 2


def test_backfill_fails_when_half_of_its_copies_fail(lserver):
    """Copies into another account whose registry policy does not allow replication all fail; the
    backfill is FAILED once 100 have been judged, and the rest is not attempted."""
    lserver.reset()
    ecr = make_client(lserver)
    ecr.create_repository(repositoryName="denied")
    base = build_image()
    push_via_api(ecr, "denied", base, "base")
    manifest = json.loads(base.manifest)
    for i in range(120):  # same blobs, distinct manifests: cheap images
        manifest["annotations"] = {"n": str(i)}
        ecr.put_image(repositoryName="denied", imageTag=f"t{i}", imageManifest=json.dumps(manifest))
    configure(ecr, rule(WEST, account="999988887777"))
    backfill_id = ecr.start_replication_backfill(destination={"region": WEST, "registryId": "999988887777"})[
        "replicationBackfillId"]
    lserver.run_jobs()
    final = ecr.describe_replication_backfill_results(replicationBackfillId=backfill_id)
    assert final["status"] == "FAILED" and final["failureCode"]
    assert final["progress"]["failedReplicationCount"] == 100 and final["progress"]["completedReplicationCount"] == 0
    assert final["progress"]["failureCodes"] == ["ACCESS_DENIED"]
    assert {r["status"] for r in final["results"]} == {"FAILED"}
    failed = ecr.describe_replication_backfill_results(replicationBackfillId=backfill_id, resultStatusFilter="COMPLETE")
    assert failed["results"] == []
