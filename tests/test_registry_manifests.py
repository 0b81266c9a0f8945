"""Manifest, tag, catalog and referrers protocol over raw HTTP, with ECR's rules on the wire."""

from __future__ import annotations

import json
import time

import pytest

from tests.errors import oci_error
from tests.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    basic_auth,
    build_artifact,
    build_image,
    build_index,
    push_via_registry,
    sha,
)
from tests.server import eventually

REPO = "wire/app"


@pytest.fixture(autouse=True)
def repo(ecr, server):
    ecr.create_repository(repositoryName=REPO)


def push(reg, image, tag=None, repo=REPO):
    return push_via_registry(reg, reg.base, repo, image, tag)


@pytest.mark.parametrize("oci", [True, False])
def test_single_arch_by_tag_and_digest(reg, ecr, oci):
    image = build_image(oci=oci)
    digest = push(reg, image, "v1")
    assert digest == image.digest
    for ref in ("v1", image.digest):
        r = reg.get(f"/v2/{REPO}/manifests/{ref}", headers={"Accept": image.media_type})
        assert r.status_code == 200
        assert r.content == image.manifest
        assert r.headers["Content-Type"] == image.media_type
        assert r.headers["Docker-Content-Digest"] == image.digest
        h = reg.head(f"/v2/{REPO}/manifests/{ref}", headers={"Accept": image.media_type})
        assert h.status_code == 200 and h.content == b""
        assert h.headers["Content-Length"] == str(len(image.manifest))
        assert h.headers["Docker-Content-Digest"] == image.digest
    detail = ecr.describe_images(repositoryName=REPO)["imageDetails"][0]
    assert detail["imageDigest"] == image.digest and detail["imageTags"] == ["v1"]
    assert detail["imageSizeInBytes"] == image.size
    assert detail["imageManifestMediaType"] == (OCI_MANIFEST if oci else DOCKER_MANIFEST)
    assert detail["artifactMediaType"] == image.config.media_type


@pytest.mark.parametrize("oci", [True, False])
def test_multi_arch_index(reg, ecr, oci):
    children = [build_image(oci=oci, architecture=a) for a in ("amd64", "arm64")]
    index = build_index(children, oci=oci)
    assert push(reg, index, "multi") == index.digest
    r = reg.get(f"/v2/{REPO}/manifests/multi", headers={"Accept": f"{OCI_INDEX}, {DOCKER_LIST}"})
    assert r.content == index.manifest and r.headers["Content-Type"] == (OCI_INDEX if oci else DOCKER_LIST)
    for child in children:
        assert reg.get(f"/v2/{REPO}/manifests/{child.digest}").content == child.manifest
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName=REPO)["imageDetails"]}
    assert len(details) == 3 and details[index.digest]["imageSizeInBytes"] == max(c.size for c in children)
    # deleting a child while the index exists is refused
    r = reg.delete(f"/v2/{REPO}/manifests/{children[0].digest}")
    assert r.status_code == 405 and oci_error(r)[1] == "UNSUPPORTED"
    assert "referenced by manifest list" in oci_error(r)[2]


def test_index_with_missing_child_is_manifest_blob_unknown(reg):
    child = build_image()
    index = build_index([child])
    r = reg.put(f"/v2/{REPO}/manifests/multi", data=index.manifest, headers={"Content-Type": OCI_INDEX})
    assert oci_error(r)[:2] == (400, "MANIFEST_BLOB_UNKNOWN")


def test_manifest_with_missing_blobs(reg):
    image = build_image()
    r = reg.put(f"/v2/{REPO}/manifests/v1", data=image.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert oci_error(r)[:2] == (400, "MANIFEST_BLOB_UNKNOWN")


def test_push_to_missing_repository_is_name_unknown(reg):
    image = build_image()
    r = reg.put("/v2/not/there/manifests/v1", data=image.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert oci_error(r) == (404, "NAME_UNKNOWN", "The repository with name 'not/there' does not exist in the "
                                                  "registry with id '123456789012'")


def test_invalid_manifests(reg):
    r = reg.put(f"/v2/{REPO}/manifests/v1", data=b"{nope", headers={"Content-Type": OCI_MANIFEST})
    assert oci_error(r)[:2] == (400, "MANIFEST_INVALID")
    image = build_image()
    r = reg.put(f"/v2/{REPO}/manifests/{sha(b'other')}", data=image.manifest,
                headers={"Content-Type": OCI_MANIFEST})
    assert oci_error(r)[:2] == (400, "DIGEST_INVALID")
    r = reg.put(f"/v2/{REPO}/manifests/-bad-tag", data=image.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert oci_error(r)[:2] == (400, "TAG_INVALID")
    r = reg.put(f"/v2/{REPO}/manifests/v1", data=image.manifest, headers={"Content-Type": DOCKER_MANIFEST})
    assert oci_error(r)[:2] == (400, "MANIFEST_INVALID")
    r = reg.put(f"/v2/{REPO}/manifests/v1", data=b"x" * (4 * 1024 * 1024 + 1),
                headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 400 and oci_error(r)[1] in ("SIZE_INVALID", "MANIFEST_INVALID")


def test_repush_is_idempotent_in_mutable_and_tag_invalid_in_immutable(reg, ecr):
    image = build_image()
    push(reg, image, "v1")
    push(reg, image, "v1")  # same content, same tag: fine on a mutable repository
    ecr.put_image_tag_mutability(repositoryName=REPO, imageTagMutability="IMMUTABLE")
    r = reg.put(f"/v2/{REPO}/manifests/v1", data=image.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert oci_error(r) == (
        400, "TAG_INVALID",
        f"The image tag 'v1' already exists in the '{REPO}' repository and cannot be overwritten because the "
        "repository is immutable.",
    )


def test_moved_tag_leaves_old_image_untagged(reg, ecr):
    a, b = build_image(), build_image()
    push(reg, a, "latest")
    push(reg, b, "latest")
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName=REPO)["imageDetails"]}
    assert "imageTags" not in details[a.digest] and details[b.digest]["imageTags"] == ["latest"]
    assert reg.get(f"/v2/{REPO}/manifests/{a.digest}").status_code == 200


def test_pulls_record_last_pull_time(reg, ecr, server):
    image = build_image()
    push(reg, image, "v1")
    assert "lastRecordedPullTime" not in ecr.describe_images(repositoryName=REPO)["imageDetails"][0]
    reg.head(f"/v2/{REPO}/manifests/v1")  # a HEAD is not a pull
    time.sleep(0.5)  # long enough for a recorded pull to be written
    assert "lastRecordedPullTime" not in ecr.describe_images(repositoryName=REPO)["imageDetails"][0]
    reg.get(f"/v2/{REPO}/manifests/v1")
    first = eventually(lambda: ecr.describe_images(repositoryName=REPO)["imageDetails"][0].get("lastRecordedPullTime"))
    server.advance_clock(7 * 86400)
    reg.headers["Authorization"] = basic_auth(ecr)  # the old token expired with the clock
    assert reg.get(f"/v2/{REPO}/manifests/{image.digest}").status_code == 200
    eventually(lambda: (ecr.describe_images(repositoryName=REPO)["imageDetails"][0]["lastRecordedPullTime"]
                        - first).days >= 7)


def test_delete_by_digest_and_by_tag(reg, ecr):
    a, b = build_image(), build_image()
    push(reg, a, "a")
    push(reg, b, "b1")
    ecr.put_image(repositoryName=REPO, imageManifest=b.manifest.decode(), imageTag="b2")
    assert reg.delete(f"/v2/{REPO}/manifests/{a.digest}").status_code == 202
    assert oci_error(reg.get(f"/v2/{REPO}/manifests/a"))[:2] == (404, "MANIFEST_UNKNOWN")
    assert reg.delete(f"/v2/{REPO}/manifests/b1").status_code == 202  # tag deletion (OCI 1.1)
    detail = ecr.describe_images(repositoryName=REPO)["imageDetails"][0]
    assert detail["imageTags"] == ["b2"]
    assert oci_error(reg.delete(f"/v2/{REPO}/manifests/{a.digest}"))[:2] == (404, "MANIFEST_UNKNOWN")


def test_accept_header_conversion_by_tag_only(reg):
    image = build_image(oci=True)
    push(reg, image, "v1")
    r = reg.get(f"/v2/{REPO}/manifests/v1", headers={"Accept": DOCKER_MANIFEST})
    assert r.headers["Content-Type"] == DOCKER_MANIFEST
    assert r.headers["Docker-Content-Digest"] == sha(r.content) != image.digest
    assert json.loads(r.content)["layers"][0]["digest"] == image.layers[0].digest
    by_digest = reg.get(f"/v2/{REPO}/manifests/{image.digest}", headers={"Accept": DOCKER_MANIFEST})
    assert by_digest.content == image.manifest  # a digest names exact bytes


def test_tags_list_pagination(reg):
    image = build_image()
    push(reg, image)
    tags = [f"t{i:03d}" for i in range(7)]
    for t in tags:
        reg.put(f"/v2/{REPO}/manifests/{t}", data=image.manifest, headers={"Content-Type": OCI_MANIFEST})
    r = reg.get(f"/v2/{REPO}/tags/list")
    assert r.json() == {"name": REPO, "tags": tags} and "Link" not in r.headers
    page = reg.get(f"/v2/{REPO}/tags/list", params={"n": 3})
    assert page.json()["tags"] == tags[:3]
    assert page.headers["Link"] == f'</v2/{REPO}/tags/list?n=3&last=t002>; rel="next"'
    seen, url = [], f"/v2/{REPO}/tags/list?n=3"
    while url:
        page = reg.get(url)
        seen += page.json()["tags"]
        link = page.headers.get("Link")
        url = link[1:link.index(">")] if link else None
    assert seen == tags
    assert reg.get(f"/v2/{REPO}/tags/list", params={"n": 2, "last": "t004"}).json()["tags"] == ["t005", "t006"]
    r = reg.get(f"/v2/{REPO}/tags/list", params={"n": 1001})
    assert oci_error(r) == (
        405, "UNSUPPORTED",
        "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value less than or "
        "equal to 1000'",
    )
    assert oci_error(reg.get("/v2/nope/tags/list"))[:2] == (404, "NAME_UNKNOWN")


def test_catalog(reg, ecr):
    for name in ("b-repo", "a-repo", "c/deep"):
        ecr.create_repository(repositoryName=name)
    assert reg.get("/v2/_catalog").json() == {"repositories": ["a-repo", "b-repo", "c/deep", REPO]}
    page = reg.get("/v2/_catalog", params={"n": 2})
    assert page.json()["repositories"] == ["a-repo", "b-repo"]
    assert page.headers["Link"] == '</v2/_catalog?n=2&last=b-repo>; rel="next"'


def test_referrers_api_and_oci_subject_header(reg, ecr):
    image = build_image()
    push(reg, image, "v1")
    sig = build_artifact(image, "application/vnd.cncf.notary.signature", b"sig", {"org.example": "yes"})
    sbom = build_artifact(image, "application/spdx+json", b"{}")
    for art in (sig, sbom):
        for blob in art.blobs:
            reg.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": blob.digest}, data=blob.data)
        r = reg.put(f"/v2/{REPO}/manifests/{art.digest}", data=art.manifest, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201 and r.headers["OCI-Subject"] == image.digest
    r = reg.get(f"/v2/{REPO}/referrers/{image.digest}")
    assert r.status_code == 200 and r.headers["Content-Type"] == OCI_INDEX
    body = r.json()
    assert body["schemaVersion"] == 2 and body["mediaType"] == OCI_INDEX
    assert body["manifests"] == [
        {"mediaType": OCI_MANIFEST, "digest": sig.digest, "size": len(sig.manifest),
         "artifactType": "application/vnd.cncf.notary.signature", "annotations": {"org.example": "yes"}},
        {"mediaType": OCI_MANIFEST, "digest": sbom.digest, "size": len(sbom.manifest),
         "artifactType": "application/spdx+json"},
    ]
    filtered = reg.get(f"/v2/{REPO}/referrers/{image.digest}", params={"artifactType": "application/spdx+json"})
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sbom.digest]
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    empty = reg.get(f"/v2/{REPO}/referrers/{'sha256:' + '9' * 64}")
    assert empty.status_code == 200 and empty.json()["manifests"] == []
    # a referrer may be pushed before its subject exists (OCI 1.1)
    later = build_image()
    early = build_artifact(later, "application/example", b"early")
    for blob in early.blobs:
        reg.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": blob.digest}, data=blob.data)
    assert reg.put(f"/v2/{REPO}/manifests/{early.digest}", data=early.manifest,
                   headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    detail = ecr.describe_images(repositoryName=REPO, imageIds=[{"imageDigest": sig.digest}])["imageDetails"][0]
    assert detail["subjectManifestDigest"] == image.digest


def test_unknown_routes_and_methods(reg):
    assert oci_error(reg.get("/v2/wire/app/whatever"))[:2] == (405, "UNSUPPORTED")
    assert oci_error(reg.post(f"/v2/{REPO}/manifests/v1"))[:2] == (405, "UNSUPPORTED")
