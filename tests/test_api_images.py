"""Images through boto3: PutImage, BatchGetImage, BatchDeleteImage, ListImages, DescribeImages."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT
from tests.errors import error_of
from tests.images import (
    DOCKER_MANIFEST,
    OCI_MANIFEST,
    build_artifact,
    build_image,
    build_index,
    push_via_api,
    random_layer,
    sha,
    upload_blob_via_api,
)
from tests.server import eventually


def test_digest_is_sha256_of_exact_bytes_and_size_is_config_plus_layers(ecr, repo):
    image = build_image([random_layer(5000), random_layer(7000)])
    out = push_via_api(ecr, repo, image, "v1")
    assert out["imageId"] == {"imageDigest": sha(image.manifest), "imageTag": "v1"}
    assert out["imageManifest"] == image.manifest.decode()
    assert out["imageManifestMediaType"] == OCI_MANIFEST
    detail = ecr.describe_images(repositoryName=repo)["imageDetails"][0]
    assert detail["imageDigest"] == image.digest
    assert detail["imageSizeInBytes"] == image.config.size + sum(b.size for b in image.layers)
    assert detail["imageTags"] == ["v1"]
    assert detail["imageManifestMediaType"] == OCI_MANIFEST
    assert detail["artifactMediaType"] == "application/vnd.oci.image.config.v1+json"
    assert detail["imageStatus"] == "ACTIVE"
    assert "lastRecordedPullTime" not in detail


def test_whitespace_changes_the_digest(ecr, repo):
    image = build_image()
    push_via_api(ecr, repo, image)
    compact = json.dumps(json.loads(image.manifest), separators=(",", ":"))
    out = ecr.put_image(repositoryName=repo, imageManifest=compact)["image"]
    assert out["imageId"]["imageDigest"] == sha(compact.encode()) != image.digest
    assert len(ecr.describe_images(repositoryName=repo)["imageDetails"]) == 2


def test_moving_a_tag_leaves_the_old_image_untagged(ecr, repo):
    a, b = build_image(), build_image()
    push_via_api(ecr, repo, a, "latest")
    push_via_api(ecr, repo, b, "latest")
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName=repo)["imageDetails"]}
    assert "imageTags" not in details[a.digest]
    assert details[b.digest]["imageTags"] == ["latest"]
    untagged = ecr.list_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})["imageIds"]
    assert untagged == [{"imageDigest": a.digest}]


def test_retag_keeps_push_time_and_same_tag_is_image_already_exists(ecr, repo, server):
    image = build_image()
    push_via_api(ecr, repo, image, "v1")
    pushed = ecr.describe_images(repositoryName=repo)["imageDetails"][0]["imagePushedAt"]
    server.advance_clock(3600)
    ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(), imageTag="prod")
    detail = ecr.describe_images(repositoryName=repo)["imageDetails"][0]
    assert sorted(detail["imageTags"]) == ["prod", "v1"]
    assert detail["imagePushedAt"] == pushed
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(), imageTag="v1")
    assert error_of(e) == (
        "ImageAlreadyExistsException",
        f"Image with digest '{image.digest}' and tag 'v1' already exists in the repository with name "
        f"'{repo}' in registry with id '{ACCOUNT}'",
    )


def test_immutable_tags(ecr):
    ecr.create_repository(repositoryName="imm", imageTagMutability="IMMUTABLE")
    a, b = build_image(), build_image()
    push_via_api(ecr, "imm", a, "v1")
    with pytest.raises(ClientError) as e:
        push_via_api(ecr, "imm", b, "v1")
    assert error_of(e)[0] == "ImageTagAlreadyExistsException"
    with pytest.raises(ClientError) as e:  # even the identical digest
        ecr.put_image(repositoryName="imm", imageManifest=a.manifest.decode(), imageTag="v1")
    assert error_of(e)[0] == "ImageTagAlreadyExistsException"
    # The refused PutImage stored nothing.
    assert [d["imageDigest"] for d in ecr.describe_images(repositoryName="imm")["imageDetails"]] == [a.digest]


def test_exclusion_filters_decide_per_tag(ecr):
    ecr.create_repository(
        repositoryName="ex", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "dev-*"}],
    )
    a, b = build_image(), build_image()
    push_via_api(ecr, "ex", a, "dev-1")
    push_via_api(ecr, "ex", b, "dev-1")  # excluded: mutable
    push_via_api(ecr, "ex", a, "release")
    with pytest.raises(ClientError) as e:
        push_via_api(ecr, "ex", b, "release")
    assert error_of(e)[0] == "ImageTagAlreadyExistsException"

    ecr.create_repository(
        repositoryName="mx", imageTagMutability="MUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "v*.*"}],
    )
    push_via_api(ecr, "mx", a, "latest")
    push_via_api(ecr, "mx", b, "latest")  # mutable
    push_via_api(ecr, "mx", a, "v1.0")
    with pytest.raises(ClientError) as e:
        push_via_api(ecr, "mx", b, "v1.0")
    assert error_of(e)[0] == "ImageTagAlreadyExistsException"


def test_put_image_error_paths(ecr, repo):
    image = build_image()
    with pytest.raises(ClientError) as e:  # blobs never uploaded
        ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(), imageTag="x")
    assert error_of(e)[0] == "LayersNotFoundException"
    for blob in image.blobs:
        upload_blob_via_api(ecr, repo, blob)
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageManifest="{not json", imageTag="x")
    assert error_of(e) == (
        "InvalidParameterException",
        "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'",
    )
    no_media_type = json.loads(image.manifest)
    del no_media_type["mediaType"]
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageManifest=json.dumps(no_media_type))
    assert error_of(e)[0] == "InvalidParameterException"
    # ...but naming it through imageManifestMediaType works, as in ECR.
    ok = ecr.put_image(repositoryName=repo, imageManifest=json.dumps(no_media_type),
                       imageManifestMediaType=OCI_MANIFEST)
    assert ok["image"]["imageManifestMediaType"] == OCI_MANIFEST
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(), imageDigest="sha256:" + "0" * 64)
    assert error_of(e)[0] == "ImageDigestDoesNotMatchException"
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(),
                      imageManifestMediaType=DOCKER_MANIFEST)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(), imageTag="bad tag!")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageManifest=image.manifest.decode(), imageTag="t" * 301)
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="missing", imageManifest=image.manifest.decode())
    assert error_of(e)[0] == "RepositoryNotFoundException"
    digests = [d["imageDigest"] for d in ecr.describe_images(repositoryName=repo)["imageDetails"]]
    assert image.digest not in digests  # every failure above stored nothing


def test_index_requires_children_and_size_is_the_largest(ecr, repo):
    small, large = build_image([random_layer(1000)]), build_image([random_layer(9000)])
    index = build_index([small, large])
    for child in (small, large):
        for blob in child.blobs:
            upload_blob_via_api(ecr, repo, blob)
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageManifest=index.manifest.decode(), imageTag="multi")
    assert error_of(e)[0] == "ReferencedImagesNotFoundException"
    push_via_api(ecr, repo, index, "multi")
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName=repo)["imageDetails"]}
    assert details[index.digest]["imageSizeInBytes"] == large.size
    assert "artifactMediaType" not in details[index.digest]
    assert "imageTags" not in details[small.digest]
    # Children cannot go while the index exists.
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": small.digest}])
    assert out["imageIds"] == []
    assert out["failures"][0]["failureCode"] == "ImageReferencedByManifestList"
    assert out["failures"][0]["failureReason"] == f"Requested image referenced by manifest list: [{index.digest}]"
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "multi"}])
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": small.digest}])
    assert out["imageIds"] == [{"imageDigest": small.digest}]


def test_batch_get_image(ecr, repo):
    image = build_image()
    push_via_api(ecr, repo, image, "v1")
    out = ecr.batch_get_image(
        repositoryName=repo,
        imageIds=[{"imageTag": "v1"}, {"imageDigest": image.digest}, {"imageTag": "nope"},
                  {"imageDigest": "garbage"}, {"imageTag": "v1", "imageDigest": "sha256:" + "1" * 64}],
    )
    assert [i["imageId"] for i in out["images"]] == [
        {"imageDigest": image.digest, "imageTag": "v1"}, {"imageDigest": image.digest}
    ]
    assert all(i["imageManifest"] == image.manifest.decode() for i in out["images"])
    assert [(f["imageId"], f["failureCode"]) for f in out["failures"]] == [
        ({"imageTag": "nope"}, "ImageNotFound"),
        ({"imageDigest": "garbage"}, "InvalidImageDigest"),
        ({"imageTag": "v1", "imageDigest": "sha256:" + "1" * 64}, "ImageTagDoesNotMatchDigest"),
    ]
    assert out["failures"][0]["failureReason"] == "Requested image not found"
    with pytest.raises(ClientError) as e:
        ecr.batch_get_image(repositoryName="missing", imageIds=[{"imageTag": "v1"}])
    assert error_of(e)[0] == "RepositoryNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": f"t{i}"} for i in range(101)])
    assert error_of(e)[0] == "InvalidParameterException"


def test_batch_get_image_records_pull_time(ecr, repo, server):
    push_via_api(ecr, repo, build_image(), "v1")
    ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    first = eventually(lambda: ecr.describe_images(repositoryName=repo)["imageDetails"][0].get("lastRecordedPullTime"))
    server.advance_clock(86400 * 3)
    ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    eventually(lambda: (ecr.describe_images(repositoryName=repo)["imageDetails"][0]["lastRecordedPullTime"]
                        - first).total_seconds() >= 86400 * 3)


def test_batch_get_image_accepted_media_types_converts_oci_to_docker(ecr, repo):
    image = build_image(oci=True)
    push_via_api(ecr, repo, image, "v1")
    out = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}],
                              acceptedMediaTypes=[DOCKER_MANIFEST])
    converted = out["images"][0]
    assert converted["imageManifestMediaType"] == DOCKER_MANIFEST
    doc = json.loads(converted["imageManifest"])
    assert doc["mediaType"] == DOCKER_MANIFEST
    assert doc["config"]["digest"] == image.config.digest
    assert [layer["digest"] for layer in doc["layers"]] == [b.digest for b in image.layers]
    assert converted["imageId"]["imageDigest"] == sha(converted["imageManifest"].encode())
    same = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}],
                               acceptedMediaTypes=[OCI_MANIFEST, DOCKER_MANIFEST])
    assert same["images"][0]["imageManifest"] == image.manifest.decode()


def test_batch_delete_by_tag_and_digest(ecr, repo):
    a, b = build_image(), build_image()
    push_via_api(ecr, repo, a, "one")
    ecr.put_image(repositoryName=repo, imageManifest=a.manifest.decode(), imageTag="two")
    push_via_api(ecr, repo, b, "b")
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "one"}])
    assert out["imageIds"] == [{"imageDigest": a.digest, "imageTag": "one"}]
    assert ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": a.digest}])["imageDetails"][0][
        "imageTags"] == ["two"]
    out = ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "two"}])
    assert out["imageIds"] == [{"imageDigest": a.digest, "imageTag": "two"}]
    with pytest.raises(ClientError) as e:  # last tag gone -> image gone
        ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": a.digest}])
    assert error_of(e)[0] == "ImageNotFoundException"
    out = ecr.batch_delete_image(
        repositoryName=repo, imageIds=[{"imageDigest": b.digest}, {"imageTag": "ghost"}, {}]
    )
    assert out["imageIds"] == [{"imageDigest": b.digest, "imageTag": "b"}]
    assert [f["failureCode"] for f in out["failures"]] == ["ImageNotFound", "MissingDigestAndTag"]
    assert ecr.list_images(repositoryName=repo)["imageIds"] == []


def test_list_images_pairs_filters_and_pagination(ecr, repo):
    a, b, c = build_image(), build_image(), build_image()
    push_via_api(ecr, repo, a, "a1")
    ecr.put_image(repositoryName=repo, imageManifest=a.manifest.decode(), imageTag="a2")
    push_via_api(ecr, repo, b, "b1")
    push_via_api(ecr, repo, c)
    ids = ecr.list_images(repositoryName=repo)["imageIds"]
    assert sorted((i["imageDigest"], i.get("imageTag")) for i in ids) == sorted(
        [(a.digest, "a1"), (a.digest, "a2"), (b.digest, "b1"), (c.digest, None)]
    )
    tagged = ecr.list_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})["imageIds"]
    assert len(tagged) == 3
    pages = list(ecr.get_paginator("list_images").paginate(repositoryName=repo, PaginationConfig={"PageSize": 1}))
    assert len(pages) == 4
    assert sorted((i["imageDigest"], i.get("imageTag")) for p in pages for i in p["imageIds"]) == sorted(
        (i["imageDigest"], i.get("imageTag")) for i in ids
    )


def test_describe_images_filters_ids_and_pagination(ecr, repo):
    images = [build_image() for _ in range(5)]
    for i, image in enumerate(images):
        push_via_api(ecr, repo, image, f"t{i}" if i % 2 == 0 else None)
    assert len(ecr.describe_images(repositoryName=repo, filter={"tagStatus": "TAGGED"})["imageDetails"]) == 3
    assert len(ecr.describe_images(repositoryName=repo, filter={"tagStatus": "UNTAGGED"})["imageDetails"]) == 2
    page = ecr.describe_images(repositoryName=repo, maxResults=2)
    assert len(page["imageDetails"]) == 2 and "nextToken" in page
    all_pages = [d["imageDigest"] for p in ecr.get_paginator("describe_images").paginate(
        repositoryName=repo, PaginationConfig={"PageSize": 2}) for d in p["imageDetails"]]
    assert sorted(all_pages) == sorted(i.digest for i in images)
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName=repo, imageIds=[{"imageTag": "t0"}, {"imageTag": "nope"}])
    assert error_of(e) == (
        "ImageNotFoundException",
        f"The image with imageId {{imageDigest:null, imageTag:'nope'}} does not exist within the repository "
        f"with name '{repo}' in the registry with id '{ACCOUNT}'",
    )
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName=repo, filter={"tagStatus": "SOMETIMES"})
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.describe_images(repositoryName="missing")
    assert error_of(e)[0] == "RepositoryNotFoundException"


def test_referrer_artifacts_carry_subject(ecr, repo):
    image = build_image()
    push_via_api(ecr, repo, image, "v1")
    sig = build_artifact(image, "application/vnd.dev.cosign.artifact.sig.v1+json", b"signature")
    push_via_api(ecr, repo, sig)
    detail = ecr.describe_images(repositoryName=repo, imageIds=[{"imageDigest": sig.digest}])["imageDetails"][0]
    assert detail["subjectManifestDigest"] == image.digest
    assert detail["artifactMediaType"] == "application/vnd.dev.cosign.artifact.sig.v1+json"


def test_list_image_referrers(ecr, repo):
    image = build_image()
    push_via_api(ecr, repo, image, "v1")
    sig = build_artifact(image, "application/vnd.cncf.notary.signature", b"sig", {"k": "v"})
    sbom = build_artifact(image, "application/spdx+json", b"sbom")
    push_via_api(ecr, repo, sig)
    push_via_api(ecr, repo, sbom)
    found = ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": image.digest})["referrers"]
    assert [r["digest"] for r in found] == [sig.digest, sbom.digest]
    assert found[0] == {"digest": sig.digest, "mediaType": OCI_MANIFEST, "size": len(sig.manifest),
                        "artifactType": "application/vnd.cncf.notary.signature", "annotations": {"k": "v"},
                        "artifactStatus": "ACTIVE"}
    only = ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": image.digest},
                                    filter={"artifactTypes": ["application/spdx+json"]})["referrers"]
    assert [r["digest"] for r in only] == [sbom.digest]
    page = ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": image.digest}, maxResults=1)
    assert len(page["referrers"]) == 1 and page["nextToken"]
    rest = ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": image.digest},
                                    nextToken=page["nextToken"])
    assert [r["digest"] for r in rest["referrers"]] == [sbom.digest] and "nextToken" not in rest
    none = ecr.list_image_referrers(repositoryName=repo, subjectId={"imageDigest": "sha256:" + "0" * 64})
    assert none["referrers"] == []
