"""The layer upload API (ECR-BEHAVIOUR section 5) through boto3, and its meeting point with the registry."""

from __future__ import annotations

import os

import pytest
import requests
from botocore.exceptions import ClientError

from tests.errors import error_of
from tests.images import Blob, build_image, push_via_api, push_via_registry, random_layer, registry_session

MiB = 1024 * 1024


@pytest.fixture
def repo(ecr):
    ecr.create_repository(repositoryName="layers")
    return "layers"


def test_multipart_upload_and_availability(ecr, repo):
    data = os.urandom(11 * MiB)
    blob = Blob(data, "application/vnd.oci.image.layer.v1.tar+gzip")
    init = ecr.initiate_layer_upload(repositoryName=repo)
    assert init["partSize"] == 10 * MiB
    uid = init["uploadId"]
    out = ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=0, partLastByte=6 * MiB - 1,
                                layerPartBlob=data[: 6 * MiB])
    assert out["lastByteReceived"] == 6 * MiB - 1
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=6 * MiB, partLastByte=len(data) - 1,
                          layerPartBlob=data[6 * MiB:])
    done = ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=[blob.digest])
    assert done["layerDigest"] == blob.digest and done["uploadId"] == uid
    avail = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[blob.digest, "sha256:" + "a" * 64,
                                                                                   "nonsense"])
    assert avail["layers"] == [{"layerDigest": blob.digest, "layerAvailability": "AVAILABLE", "layerSize": len(data)}]
    assert [(f["layerDigest"], f["failureCode"]) for f in avail["failures"]] == [
        ("sha256:" + "a" * 64, "MissingLayerDigest"), ("nonsense", "InvalidLayerDigest")
    ]
    with pytest.raises(ClientError) as e:  # consumed
        ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=[blob.digest])
    assert error_of(e)[0] == "UploadNotFoundException"


def test_upload_part_errors(ecr, repo):
    uid = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    with pytest.raises(ClientError) as e:
        ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=5, partLastByte=9,
                              layerPartBlob=b"abcde")
    assert error_of(e)[0] == "InvalidLayerPartException"
    assert e.value.response["Error"]["Code"] == "InvalidLayerPartException"
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=0, partLastByte=4, layerPartBlob=b"abcde")
    with pytest.raises(ClientError) as e:  # not contiguous
        ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=10, partLastByte=14,
                              layerPartBlob=b"fghij")
    assert error_of(e)[0] == "InvalidLayerPartException"
    assert e.value.response["lastValidByteReceived"] == 4
    assert e.value.response["uploadId"] == uid
    with pytest.raises(ClientError) as e:  # length does not match range
        ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=5, partLastByte=20,
                              layerPartBlob=b"fghij")
    assert error_of(e)[0] == "InvalidLayerPartException"
    # a small non-final part, then more: too small on completion
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=5, partLastByte=9, layerPartBlob=b"fghij")
    with pytest.raises(ClientError) as e:
        ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=[Blob(b"abcdefghij", "x").digest])
    assert error_of(e)[0] == "LayerPartTooSmallException"
    with pytest.raises(ClientError) as e:
        ecr.upload_layer_part(repositoryName=repo, uploadId="00000000-0000-0000-0000-000000000000",
                              partFirstByte=0, partLastByte=0, layerPartBlob=b"a")
    assert error_of(e)[0] == "UploadNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.upload_layer_part(repositoryName=repo, uploadId="not-a-uuid", partFirstByte=0, partLastByte=0,
                              layerPartBlob=b"a")
    assert error_of(e)[0] == "InvalidParameterException"


def test_complete_errors(ecr, repo):
    uid = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    with pytest.raises(ClientError) as e:
        ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=["sha256:" + "0" * 64])
    assert error_of(e)[0] == "EmptyUploadException"
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=0, partLastByte=2, layerPartBlob=b"abc")
    with pytest.raises(ClientError) as e:
        ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=["sha256:" + "0" * 64])
    assert error_of(e)[0] == "InvalidLayerException"
    digest = Blob(b"abc", "x").digest
    ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=[digest])
    uid2 = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid2, partFirstByte=0, partLastByte=2, layerPartBlob=b"abc")
    with pytest.raises(ClientError) as e:
        ecr.complete_layer_upload(repositoryName=repo, uploadId=uid2, layerDigests=[digest])
    assert error_of(e)[0] == "LayerAlreadyExistsException"
    ecr.create_repository(repositoryName="other")
    with pytest.raises(ClientError) as e:  # an upload id of another repository
        ecr.complete_layer_upload(repositoryName="other", uploadId=uid2, layerDigests=[digest])
    assert error_of(e)[0] == "UploadNotFoundException"


def test_blobs_are_per_repository(ecr, repo):
    image = build_image()
    push_via_api(ecr, repo, image, "v1")
    ecr.create_repository(repositoryName="elsewhere")
    avail = ecr.batch_check_layer_availability(repositoryName="elsewhere", layerDigests=[image.layers[0].digest])
    assert avail["layers"] == [] and avail["failures"][0]["failureCode"] == "MissingLayerDigest"
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName="elsewhere", imageManifest=image.manifest.decode())
    assert error_of(e)[0] == "LayersNotFoundException"


def test_download_url_serves_the_layer_from_the_registry(ecr, repo, server):
    image = build_image([random_layer(300_000)])
    push_via_api(ecr, repo, image, "v1")
    layer = image.layers[0]
    out = ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=layer.digest)
    assert out["layerDigest"] == layer.digest
    url = out["downloadUrl"].replace(server.registry, f"127.0.0.1:{server.registry_port}")
    resp = requests.get(url, timeout=30)  # no credentials: the URL is pre-signed
    assert resp.status_code == 200
    assert resp.content == layer.data
    tampered = requests.get(url.replace(layer.digest, image.config.digest), timeout=30)
    assert tampered.status_code == 403
    avail = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[image.config.digest])
    assert avail["layers"][0]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    # a layer uploaded but not referenced by any image
    orphan = Blob(os.urandom(100), "x")
    uid = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    ecr.upload_layer_part(repositoryName=repo, uploadId=uid, partFirstByte=0, partLastByte=99, layerPartBlob=orphan.data)
    ecr.complete_layer_upload(repositoryName=repo, uploadId=uid, layerDigests=[orphan.digest])
    with pytest.raises(ClientError) as e:
        ecr.get_download_url_for_layer(repositoryName=repo, layerDigest=orphan.digest)
    assert error_of(e)[0] == "LayerInaccessibleException"
    with pytest.raises(ClientError) as e:
        ecr.get_download_url_for_layer(repositoryName=repo, layerDigest="sha256:" + "b" * 64)
    assert error_of(e)[0] == "LayersNotFoundException"


def test_api_push_and_registry_push_are_byte_identical(ecr, server):
    ecr.create_repository(repositoryName="via-api")
    ecr.create_repository(repositoryName="via-registry")
    image = build_image([random_layer(50_000), random_layer(20_000)])
    push_via_api(ecr, "via-api", image, "v1")
    push_via_registry(registry_session(ecr), server.registry_url, "via-registry", image, "v1")
    a = ecr.describe_images(repositoryName="via-api")["imageDetails"][0]
    b = ecr.describe_images(repositoryName="via-registry")["imageDetails"][0]
    for key in ("imageDigest", "imageSizeInBytes", "imageManifestMediaType", "artifactMediaType", "imageTags"):
        assert a[key] == b[key]
    ma = ecr.batch_get_image(repositoryName="via-api", imageIds=[{"imageTag": "v1"}])["images"][0]
    mb = ecr.batch_get_image(repositoryName="via-registry", imageIds=[{"imageTag": "v1"}])["images"][0]
    assert ma["imageManifest"] == mb["imageManifest"] == image.manifest.decode()
    s = registry_session(ecr)
    for blob in image.blobs:
        ra = s.get(f"{server.registry_url}/v2/via-api/blobs/{blob.digest}")
        rb = s.get(f"{server.registry_url}/v2/via-registry/blobs/{blob.digest}")
        assert ra.content == rb.content == blob.data
