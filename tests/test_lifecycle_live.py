"""Lifecycle policies that really run, end to end: images pushed over the registry protocol at
chosen times (the emulator clock set through the test-control API), previews through boto3,
execution through the test-control API and the CLI.

This module runs its own server with background workers off, so nothing happens unless a
test asks for it; tests/test_lifecycle_background.py covers the workers."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import make_client
from tests.images import (
    build_artifact,
    build_image,
    build_index,
    push_via_registry,
    random_layer,
    write_oci_layout,
)
from tests.server import LiveServer, start_server
from tests.test_api_repositories import error_of

DAY = 86400
REPO = "lc/app"


@pytest.fixture(scope="module")
def lserver(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("lifecycle") / "data", "--job-workers", "0")
    yield live
    live.stop()


class World:
    """One test's view: a fixed 'now' (T0) and helpers to push at an age and to run things."""

    def __init__(self, server: LiveServer):
        self.server = server
        self.ecr = make_client(server)
        self.t0 = server.control("clock")["now"]

    def at(self, days_ago: float) -> None:
        self.server.control("clock", {"set": self.t0 - days_ago * DAY})

    def now(self) -> None:
        self.server.control("clock", {"set": self.t0})

    def session(self) -> requests.Session:
        s = requests.Session()
        token = self.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        s.headers["Authorization"] = f"Basic {token}"
        return s

    def push(self, image, tag=None, days_ago: float = 0, repo: str = REPO) -> str:
        self.at(days_ago)
        return push_via_registry(self.session(), self.server.registry_url, repo, image, tag)

    def tag(self, image, tag: str, repo: str = REPO) -> None:
        self.ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(), imageTag=tag)

    def policy(self, *rules, repo: str = REPO) -> str:
        text = json.dumps({"rules": [
            {"rulePriority": i, "selection": sel, "action": act}
            for i, (sel, act) in enumerate(rules, start=1)
        ]})
        self.ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
        return text

    def preview(self, repo: str = REPO, **kw) -> dict:
        started = self.ecr.start_lifecycle_policy_preview(repositoryName=repo)
        assert started["status"] == "IN_PROGRESS"
        assert self.ecr.get_lifecycle_policy_preview(repositoryName=repo)["status"] == "IN_PROGRESS"
        self.server.run_jobs()
        out = self.ecr.get_lifecycle_policy_preview(repositoryName=repo, **kw)
        assert out["status"] == "COMPLETE"
        return out

    def run(self, repo: str = REPO) -> dict:
        return self.server.control("lifecycle/run", {"repository": repo})["runs"][0]

    def digests(self, repo: str = REPO, status: str = "ACTIVE") -> set[str]:
        details = self.ecr.describe_images(repositoryName=repo, filter={"imageStatus": status})["imageDetails"]
        return {d["imageDigest"] for d in details}


@pytest.fixture
def w(lserver) -> World:
    lserver.reset()
    world = World(lserver)
    world.ecr.create_repository(repositoryName=REPO)
    return world


def tagged(patterns, **count):
    return {"tagStatus": "tagged", "tagPatternList": patterns, **count}


COUNT1 = {"countType": "imageCountMoreThan", "countNumber": 1}
EXPIRE = {"type": "expire"}
ARCHIVE = {"type": "transition", "targetStorageClass": "archive"}


def since(days, kind="sinceImagePushed"):
    return {"countType": kind, "countUnit": "days", "countNumber": days}


def run_example(w: World, images: dict, rules: list, expected: set[str]) -> None:
    """Push ``images`` (name -> (tags, days ago)), preview and run ``rules``, check ``expected``."""
    built = {}
    for name, (tags, days) in images.items():
        image = build_image()
        built[name] = image
        w.push(image, tags[0] if tags else None, days_ago=days)
        for extra in tags[1:]:
            w.tag(image, extra)
    w.now()
    w.policy(*rules)
    preview = w.preview()
    by_digest = {img.digest: name for name, img in built.items()}
    assert {by_digest[r["imageDigest"]] for r in preview["previewResults"]} == expected
    assert preview["summary"] == {"expiringImageTotalCount": len(expected)}
    run = w.run()
    assert {by_digest[d] for d in run["expired"]} == expected
    assert w.digests() == {built[n].digest for n in built if n not in expected}
    assert w.ecr.get_lifecycle_policy(repositoryName=REPO)["lastEvaluatedAt"].timestamp() > 0


def test_user_guide_example_a(w):
    run_example(w, {"A": (["beta-1", "prod-1"], 10), "B": (["beta-2", "prod-2"], 9), "C": (["beta-3"], 8)},
                [(tagged(["prod*"], **COUNT1), EXPIRE), (tagged(["beta*"], **COUNT1), EXPIRE)], {"A"})


def test_user_guide_example_b(w):
    run_example(w, {"A": (["beta-1", "prod-1"], 10), "B": (["beta-2", "prod-2"], 9), "C": (["beta-3"], 8)},
                [(tagged(["beta*"], **COUNT1), EXPIRE), (tagged(["prod*"], **COUNT1), EXPIRE)], {"A", "B"})


def test_user_guide_example_c(w):
    run_example(w, {"A": (["alpha-1"], 12), "B": (["beta-1"], 11), "C": (["alpha-2", "beta-2"], 10),
                    "D": (["alpha-3"], 4), "E": (["beta-3"], 3), "F": (["alpha-4", "beta-4"], 2)},
                [(tagged(["alpha*", "beta*"], **since(5)), EXPIRE)], {"C"})


def test_user_guide_example_d(w):
    run_example(w, {"A": (["alpha-1", "beta-1", "gamma-1"], 10), "B": (["alpha-2", "beta-2"], 9),
                    "C": (["alpha-3", "beta-3", "gamma-2"], 8)},
                [(tagged(["alpha*", "beta*"], **COUNT1), EXPIRE)], {"A", "B"})


def test_user_guide_example_e(w):
    run_example(w, {"A": (["alpha-1"], 4), "B": ([], 3), "C": ([], 2), "D": (["alpha-2"], 1)},
                [({"tagStatus": "any", **COUNT1}, EXPIRE)], {"A", "B", "C"})


def test_user_guide_example_f(w):
    run_example(
        w,
        {"A": (["alpha-1", "beta-1"], 4), "B": ([], 3), "C": (["alpha-2"], 2), "D": (["git-hash"], 0.9),
         "E": ([], 0.8)},
        [(tagged(["alpha*"], **COUNT1), EXPIRE), ({"tagStatus": "untagged", **since(1)}, EXPIRE),
         ({"tagStatus": "any", **COUNT1}, EXPIRE)],
        {"A", "B", "D"},
    )


def test_preview_errors_filters_and_pagination(w):
    ecr = w.ecr
    with pytest.raises(ClientError) as e:
        ecr.get_lifecycle_policy_preview(repositoryName=REPO)
    assert error_of(e)[0] == "LifecyclePolicyPreviewNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.start_lifecycle_policy_preview(repositoryName=REPO)
    assert error_of(e)[0] == "LifecyclePolicyNotFoundException"
    images = [build_image() for _ in range(5)]
    for i, image in enumerate(images):
        w.push(image, f"t{i}" if i % 2 == 0 else None, days_ago=10 - i)
    w.now()
    text = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", **since(1)},
                                  "action": EXPIRE}]}, indent=4)
    started = ecr.start_lifecycle_policy_preview(repositoryName=REPO, lifecyclePolicyText=text)
    assert started["lifecyclePolicyText"] == text  # the preview echoes the text exactly as sent
    with pytest.raises(ClientError) as e:
        ecr.start_lifecycle_policy_preview(repositoryName=REPO, lifecyclePolicyText=text)
    assert error_of(e)[0] == "LifecyclePolicyPreviewInProgressException"
    w.server.run_jobs()
    out = ecr.get_lifecycle_policy_preview(repositoryName=REPO)
    assert out["lifecyclePolicyText"] == text
    assert len(out["previewResults"]) == 5
    first = out["previewResults"][0]
    assert first["action"] == {"type": "EXPIRE"} and first["appliedRulePriority"] == 1
    assert first["storageClass"] == "STANDARD" and first["imageDigest"] == images[0].digest
    assert first["imageTags"] == ["t0"]
    assert "imageTags" not in out["previewResults"][1]
    tagged_only = ecr.get_lifecycle_policy_preview(repositoryName=REPO, filter={"tagStatus": "TAGGED"})
    assert len(tagged_only["previewResults"]) == 3
    assert tagged_only["summary"] == {"expiringImageTotalCount": 5}  # the summary is of the whole preview
    by_id = ecr.get_lifecycle_policy_preview(repositoryName=REPO, imageIds=[{"imageTag": "t2"}])
    assert [r["imageDigest"] for r in by_id["previewResults"]] == [images[2].digest]
    pages = list(ecr.get_paginator("get_lifecycle_policy_preview").paginate(
        repositoryName=REPO, PaginationConfig={"PageSize": 2}))
    assert [len(p["previewResults"]) for p in pages] == [2, 2, 1]
    with pytest.raises(ClientError) as e:
        ecr.get_lifecycle_policy_preview(repositoryName=REPO, maxResults=101)
    assert error_of(e)[0] == "InvalidParameterException"
    # a preview changes nothing
    assert len(w.digests()) == 5
    with pytest.raises(ClientError) as e:
        ecr.start_lifecycle_policy_preview(repositoryName=REPO, lifecyclePolicyText='{"rules": "x"}' + " " * 90)
    assert error_of(e)[0] == "InvalidParameterException"


def test_retagging_does_not_reset_age(w):
    old = build_image()
    w.push(old, "v1", days_ago=40)
    w.at(1)
    w.tag(old, "prod")
    w.now()
    w.policy((tagged(["prod*"], **since(30)), EXPIRE))
    assert w.run()["expired"] == [old.digest]


def test_multi_arch_children_wait_for_their_index(w):
    children = [build_image(architecture=a) for a in ("amd64", "arm64")]
    index = build_index(children)
    w.push(index, "multi", days_ago=20)
    w.now()
    w.policy(({"tagStatus": "untagged", **since(5)}, EXPIRE))
    assert w.preview()["previewResults"] == []  # children are protected while the index exists
    assert w.run()["expired"] == []
    w.ecr.batch_delete_image(repositoryName=REPO, imageIds=[{"imageTag": "multi"}])
    expired = w.run()["expired"]
    assert sorted(expired) == sorted(c.digest for c in children)
    assert w.digests() == set()


def test_referrers_go_with_their_subject(w):
    subject = build_image()
    w.push(subject, "old", days_ago=50)
    sig = build_artifact(subject, "application/vnd.cncf.notary.signature", b"sig")
    w.push(sig, days_ago=1)
    keep = build_image()
    w.push(keep, "new", days_ago=1)
    w.now()
    w.policy((tagged(["old"], **since(30)), EXPIRE))
    preview = w.preview()
    assert [r["imageDigest"] for r in preview["previewResults"]] == [subject.digest]
    run = w.run()
    assert run["expired"] == [subject.digest, sig.digest]
    assert w.digests() == {keep.digest}


def test_deleting_a_subject_cleans_up_its_referrers(w):
    subject = build_image()
    w.push(subject, "v1")
    sbom = build_artifact(subject, "application/spdx+json", b"{}")
    w.push(sbom)
    w.ecr.batch_delete_image(repositoryName=REPO, imageIds=[{"imageDigest": subject.digest}])
    assert sbom.digest in w.digests()  # asynchronously, as on ECR
    w.server.run_jobs()
    assert w.digests() == set()


def test_expired_images_take_their_unshared_blobs(w):
    shared = random_layer(5000)
    old = build_image([shared, random_layer(6000)])
    new = build_image([shared])
    w.push(old, "old", days_ago=40)
    w.push(new, "new", days_ago=1)
    w.now()
    w.policy((tagged(["old"], **since(30)), EXPIRE))
    w.run()
    blob_files = {p.name for p in (w.server.data_dir / "blobs").rglob("*") if p.is_file()}
    assert old.layers[1].digest.split(":")[1] not in blob_files
    assert old.config.digest.split(":")[1] not in blob_files
    assert old.layers[0].digest.split(":")[1] in blob_files  # still used by the new image
    s = w.session()
    assert s.get(f"{w.server.registry_url}/v2/{REPO}/blobs/{new.layers[0].digest}").content == shared


def test_transition_then_expire_from_the_archive(w):
    old, fresh = build_image(), build_image()
    w.push(old, "old", days_ago=60)
    w.push(fresh, "fresh", days_ago=1)
    w.now()
    w.policy(({"tagStatus": "any", **since(30)}, ARCHIVE))
    preview = w.preview()
    assert [(r["imageDigest"], r["action"]) for r in preview["previewResults"]] == [
        (old.digest, {"type": "TRANSITION", "targetStorageClass": "ARCHIVE"})]
    assert preview["summary"] == {"expiringImageTotalCount": 0, "transitioningImageTotalCounts": [
        {"targetStorageClass": "ARCHIVE", "imageTotalCount": 1}]}
    assert w.run()["transitioned"] == [old.digest]
    assert w.digests() == {fresh.digest}
    assert w.digests(status="ARCHIVED") == {old.digest}
    archived = w.ecr.describe_images(repositoryName=REPO, imageIds=[{"imageDigest": old.digest}])["imageDetails"][0]
    assert archived["imageStatus"] == "ARCHIVED" and "lastArchivedAt" in archived
    # archived images cannot be pulled
    r = w.session().get(f"{w.server.registry_url}/v2/{REPO}/manifests/old")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert "archived" in r.json()["errors"][0]["message"]
    # now expire from the archive after 90 days there
    w.policy(
        ({"tagStatus": "any", "storageClass": "archive", **since(90, "sinceImageTransitioned")}, EXPIRE),
    )
    assert w.run()["expired"] == []
    w.server.control("clock", {"set": w.t0 + 91 * DAY})
    assert w.run()["expired"] == [old.digest]
    assert w.digests(status="ANY") == {fresh.digest}


def test_since_image_pulled_archives_images_nobody_pulls(w):
    pulled, idle = build_image(), build_image()
    w.push(pulled, "pulled", days_ago=60)
    w.push(idle, "idle", days_ago=60)
    w.at(2)
    assert w.session().get(f"{w.server.registry_url}/v2/{REPO}/manifests/pulled").status_code == 200
    w.now()
    w.policy(({"tagStatus": "any", **since(30, "sinceImagePulled")}, ARCHIVE))
    assert w.run()["transitioned"] == [idle.digest]


def test_update_image_storage_class_archive_and_restore(w):
    image = build_image()
    w.push(image, "v1")
    ecr = w.ecr
    out = ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")
    assert out["imageStatus"] == "ARCHIVED" and out["imageId"] == {"imageDigest": image.digest, "imageTag": "v1"}
    assert ecr.list_images(repositoryName=REPO)["imageIds"] == []
    assert ecr.list_images(repositoryName=REPO, filter={"imageStatus": "ARCHIVED"})["imageIds"] == [
        {"imageDigest": image.digest, "imageTag": "v1"}]
    got = ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageTag": "v1"}])
    assert got["images"] == [] and got["failures"][0]["failureCode"] == "ImageNotFound"
    layers = ecr.batch_check_layer_availability(repositoryName=REPO, layerDigests=[image.layers[0].digest])
    assert layers["layers"][0]["layerAvailability"] == "ARCHIVED"
    with pytest.raises(ClientError) as e:
        ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")
    assert error_of(e)[0] == "ImageStorageClassUpdateNotSupportedException"
    out = ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageDigest": image.digest},
                                         targetStorageClass="STANDARD")
    assert out["imageStatus"] == "ACTIVATING"
    assert w.digests(status="ACTIVATING") == {image.digest}
    assert w.session().get(f"{w.server.registry_url}/v2/{REPO}/manifests/v1").status_code == 404
    w.server.run_jobs()
    assert w.digests(status="ACTIVATING") == {image.digest}  # restoring takes time
    w.server.advance_clock(1201)
    w.server.run_jobs()
    detail = ecr.describe_images(repositoryName=REPO)["imageDetails"][0]
    assert detail["imageStatus"] == "ACTIVE" and "lastActivatedAt" in detail and "lastArchivedAt" in detail
    assert w.session().get(f"{w.server.registry_url}/v2/{REPO}/manifests/v1").status_code == 200
    with pytest.raises(ClientError) as e:
        ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageTag": "nope"},
                                       targetStorageClass="ARCHIVE")
    assert error_of(e)[0] == "ImageNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageTag": "v1"},
                                       targetStorageClass="GLACIER")
    assert error_of(e)[0] == "InvalidParameterException"


def test_children_cannot_be_archived_and_repush_restores(w):
    children = [build_image(), build_image()]
    index = build_index(children)
    w.push(index, "multi")
    with pytest.raises(ClientError) as e:
        w.ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageDigest": children[0].digest},
                                         targetStorageClass="ARCHIVE")
    assert error_of(e)[0] == "ImageStorageClassUpdateNotSupportedException"
    single = build_image()
    w.push(single, "single")
    w.ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageTag": "single"}, targetStorageClass="ARCHIVE")
    w.push(single, "single")  # pushing it again brings it back
    detail = w.ecr.describe_images(repositoryName=REPO, imageIds=[{"imageTag": "single"}])["imageDetails"][0]
    assert detail["imageStatus"] == "ACTIVE" and "lastActivatedAt" in detail


def test_cli_lifecycle_run(w):
    old = build_image()
    w.push(old, "old", days_ago=40)
    w.now()
    w.policy((tagged(["old"], **since(30)), EXPIRE))
    # The CLI reads the clock of its own process (real time); the image is 40 days old there too.
    out = subprocess.run(
        [sys.executable, "-m", "ecr_emulator", "lifecycle", "run", "--repository", REPO, *w.server.storage_args],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    assert json.loads(out.splitlines()[-1])["expired"] == [old.digest]
    assert w.digests() == set()


def test_a_run_that_dies_half_way_leaves_whole_images_and_the_next_run_finishes(w, monkeypatch):
    from ecr_emulator import config
    from ecr_emulator.core.bootstrap import build_services
    from ecr_emulator.core.lifecycle import execute
    from ecr_emulator.core.naming import Scope

    images = [build_image() for _ in range(6)]
    for i, image in enumerate(images):
        w.push(image, f"v{i}", days_ago=40 - i)
    w.now()
    w.policy(({"tagStatus": "any", **since(30)}, EXPIRE))
    environ = {"ECR_EMULATOR_DATA_DIR": str(w.server.data_dir)}
    if w.server.database_url:
        environ["ECR_EMULATOR_DATABASE_URL"] = w.server.database_url
    services = build_services(config.load(environ=environ))
    real_apply, calls = execute._apply, []

    def dying_apply(ctx, repo, action, result, new_indexes):
        calls.append(action.image.digest)
        if len(calls) == 4:
            raise RuntimeError("power cut")
        return real_apply(ctx, repo, action, result, new_indexes)

    monkeypatch.setattr(execute, "_apply", dying_apply)
    monkeypatch.setattr(execute, "BATCH", 2)  # two images per transaction
    with pytest.raises(RuntimeError):
        execute.run_repository(services, Scope("123456789012", "us-east-1"), REPO)
    remaining = w.digests()
    assert remaining == {i.digest for i in images[2:]}  # the first batch went, the second rolled back
    for image in images[2:]:  # every remaining image is whole: manifest, tags and blobs
        got = w.ecr.batch_get_image(repositoryName=REPO, imageIds=[{"imageDigest": image.digest}])["images"]
        assert got[0]["imageManifest"] == image.manifest.decode()
        s = w.session()
        for blob in image.blobs:
            assert s.get(f"{w.server.registry_url}/v2/{REPO}/blobs/{blob.digest}").content == blob.data
    monkeypatch.setattr(execute, "_apply", real_apply)
    assert sorted(w.run()["expired"]) == sorted(i.digest for i in images[2:])  # the rest, finished
    assert w.digests() == set()
    services.db.dispose()


def test_archived_layers_cannot_be_downloaded(w):
    image = build_image([random_layer(3000)])
    w.push(image, "v1")
    layer = image.layers[0].digest
    w.ecr.update_image_storage_class(repositoryName=REPO, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")
    with pytest.raises(ClientError) as e:
        w.ecr.get_download_url_for_layer(repositoryName=REPO, layerDigest=layer)
    assert error_of(e)[0] == "LayerInaccessibleException"
    r = w.session().get(f"{w.server.registry_url}/v2/{REPO}/blobs/{layer}")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    other = build_image([image.layers[0].data])  # the same layer in an active image is served again
    w.push(other, "v2")
    assert w.session().get(f"{w.server.registry_url}/v2/{REPO}/blobs/{layer}").content == image.layers[0].data


def test_images_pushed_by_skopeo_expire_on_the_clock(w, tmp_path):
    """The same flow with a real registry client: skopeo pushes at chosen times, the policy
    keeps the newest two tagged releases and drops untagged images older than a week."""
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo not installed")
    images = {f"r{i}": build_image() for i in range(4)}
    layout = write_oci_layout(tmp_path / "layout", images)
    authfile = tmp_path / "auth.json"
    host = f"localhost:{w.server.registry_port}"

    def skopeo_push(tag: str, days_ago: float, dest_tag: str) -> None:
        w.at(days_ago)
        password = w.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        password = base64.b64decode(password).decode().split(":", 1)[1]
        env = {"REGISTRY_AUTH_FILE": str(authfile)}
        subprocess.run(["skopeo", "login", "--tls-verify=false", "-u", "AWS", "--password-stdin", host],
                       input=password, text=True, check=True, capture_output=True, env={**os.environ, **env})
        subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:{tag}",
                        f"docker://{host}/{REPO}:{dest_tag}"], check=True, capture_output=True,
                       env={**os.environ, **env}, timeout=120)

    skopeo_push("r0", 30, "release-1")
    skopeo_push("r1", 20, "release-2")
    skopeo_push("r2", 10, "release-3")
    skopeo_push("r3", 9, "scratch")
    w.tag(images["r3"], "scratch-2")
    w.ecr.batch_delete_image(repositoryName=REPO, imageIds=[{"imageTag": "scratch"}, {"imageTag": "scratch-2"}])
    w.now()
    # deleting the last tags of r3 deleted it; re-push it untagged to have an old untagged image
    w.at(9)
    push_via_registry(w.session(), w.server.registry_url, REPO, images["r3"])
    w.now()
    w.policy((tagged(["release-*"], countType="imageCountMoreThan", countNumber=2), EXPIRE),
             ({"tagStatus": "untagged", **since(7)}, EXPIRE))
    run = w.run()
    assert sorted(run["expired"]) == sorted([images["r0"].digest, images["r3"].digest])
    assert w.digests() == {images["r1"].digest, images["r2"].digest}
