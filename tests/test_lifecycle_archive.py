"""Storage classes and lifecycle safety end to end: transitions to the archive, expiry from it,
UpdateImageStorageClass through ACTIVATING, archived images and layers refusing pulls, and a
lifecycle run that dies half-way."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.errors import error_of
from tests.images import (
    build_image,
    build_index,
    random_layer,
)
from tests.lifecycle_world import (
    ARCHIVE,
    DAY,
    EXPIRE,
    REPO,
    since,
)
from tests.server import eventually


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
    eventually(lambda: w.ecr.describe_images(repositoryName=REPO, imageIds=[{"imageTag": "pulled"}])
               ["imageDetails"][0].get("lastRecordedPullTime"))  # pull times are written just behind the pull
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
