"""Lifecycle policies that really run, end to end: images pushed over the registry protocol (and
by skopeo) at chosen times on the emulator clock, previews through boto3, execution through the
test-control API and the CLI. The server has background workers off, so nothing happens unless
a test asks for it; tests/test_lifecycle_background.py covers the workers."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys

import pytest
from botocore.exceptions import ClientError

from tests.errors import error_of
from tests.images import (
    build_artifact,
    build_image,
    build_index,
    push_via_registry,
    random_layer,
    write_oci_layout,
)
from tests.lifecycle_world import (
    COUNT1,
    EXPIRE,
    REPO,
    World,
    since,
    tagged,
)


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
