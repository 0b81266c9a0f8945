"""Blob protocol edges over raw HTTP: every upload flavour, ranges, mounts, errors, headers."""

from __future__ import annotations

import os

import pytest

from tests.errors import oci_error
from tests.images import Blob, build_image, push_via_api, push_via_registry

pytestmark = pytest.mark.usefixtures("repo")


@pytest.fixture
def repo(ecr):
    ecr.create_repository(repositoryName="blobs/test")
    return "blobs/test"


def start(reg, repo="blobs/test"):
    r = reg.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == "0-0"
    assert r.headers["Docker-Upload-UUID"]
    assert r.headers["Location"].startswith(f"/v2/{repo}/blobs/uploads/")
    return r.headers["Location"]


def test_monolithic_post_with_digest(reg):
    blob = Blob(os.urandom(5000), "x")
    r = reg.post("/v2/blobs/test/blobs/uploads/", params={"digest": blob.digest}, data=blob.data,
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/blobs/test/blobs/{blob.digest}"
    assert r.headers["Docker-Content-Digest"] == blob.digest
    head = reg.head(f"/v2/blobs/test/blobs/{blob.digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "5000"
    assert head.headers["Docker-Content-Digest"] == blob.digest
    assert head.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert reg.get(f"/v2/blobs/test/blobs/{blob.digest}").content == blob.data


def test_post_then_put(reg):
    blob = Blob(os.urandom(3000), "x")
    location = start(reg)
    r = reg.put(location, params={"digest": blob.digest}, data=blob.data)
    assert r.status_code == 201 and r.headers["Docker-Content-Digest"] == blob.digest
    assert reg.get(f"/v2/blobs/test/blobs/{blob.digest}").content == blob.data


def test_chunked_patch_with_content_range_and_out_of_order(reg):
    data = os.urandom(10_000)
    blob = Blob(data, "x")
    location = start(reg)
    r = reg.patch(location, data=data[:4000], headers={"Content-Range": "0-3999",
                                                      "Content-Type": "application/octet-stream"})
    assert r.status_code == 202 and r.headers["Range"] == "0-3999"
    bad = reg.patch(location, data=data[5000:6000], headers={"Content-Range": "5000-5999"})
    assert bad.status_code == 416
    assert oci_error(bad)[1] == "RANGE_INVALID"
    assert bad.headers["Range"] == "0-3999"
    status = reg.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-3999"
    r = reg.patch(location, data=data[4000:], headers={"Content-Range": "4000-9999"})
    assert r.status_code == 202 and r.headers["Range"] == "0-9999"
    r = reg.put(location, params={"digest": blob.digest})
    assert r.status_code == 201
    assert reg.get(f"/v2/blobs/test/blobs/{blob.digest}").content == data


@pytest.mark.parametrize("streamed", [False, True], ids=["read whole", "streamed"])
def test_patch_errors_whatever_the_body(reg, streamed):
    """A body with a Content-Length up to 1 MiB is read whole and appended in one transaction;
    others (here a chunked one) are streamed under a lease. The answers are the same."""
    size = 10_000
    data = os.urandom(size)

    def body():  # type: ignore[no-untyped-def]
        return iter([data[:4000], data[4000:]]) if streamed else data

    location = start(reg)
    unknown = location.rsplit("/", 1)[0] + "/0f3e2a6c-0000-4000-8000-000000000000"
    r = reg.patch(unknown, data=body(), headers={"Content-Range": "nonsense"})
    assert (r.status_code, oci_error(r)[1]) == (404, "BLOB_UPLOAD_UNKNOWN")  # the upload first, then the header
    r = reg.patch(location, data=body(), headers={"Content-Range": "nonsense"})
    assert oci_error(r)[1] == "BLOB_UPLOAD_INVALID" and "Malformed Content-Range" in oci_error(r)[2]
    r = reg.patch(location, data=body(), headers={"Content-Range": f"1-{size}"})  # not where the upload stands
    assert (r.status_code, oci_error(r)[1]) == (416, "RANGE_INVALID")
    assert reg.get(location).headers["Range"] == "0-0"  # nothing was taken
    r = reg.patch(location, data=body(), headers={"Content-Range": f"0-{size - 1}"})
    assert r.status_code == 202 and r.headers["Range"] == f"0-{size - 1}"
    r = reg.patch(location, data=body(), headers={"Content-Range": f"0-{size - 1}"})  # the same chunk again
    assert (r.status_code, oci_error(r)[1]) == (416, "RANGE_INVALID") and r.headers["Range"] == f"0-{size - 1}"
    blob = Blob(data, "x")
    assert reg.put(location, params={"digest": blob.digest}).status_code == 201
    assert reg.get(f"/v2/blobs/test/blobs/{blob.digest}").content == data


def test_streamed_patch_without_content_range(reg):
    data = os.urandom(3 * 1024 * 1024 + 17)
    blob = Blob(data, "x")
    location = start(reg)

    def chunks():
        for i in range(0, len(data), 65536):
            yield data[i:i + 65536]

    r = reg.patch(location, data=chunks())  # chunked transfer encoding, no Content-Range
    assert r.status_code == 202 and r.headers["Range"] == f"0-{len(data) - 1}"
    assert reg.put(location, params={"digest": blob.digest}).status_code == 201
    assert reg.get(f"/v2/blobs/test/blobs/{blob.digest}").content == data


def test_put_with_final_chunk_and_wrong_digest(reg):
    data = os.urandom(2000)
    location = start(reg)
    reg.patch(location, data=data[:1000])
    bad = reg.put(location, params={"digest": "sha256:" + "0" * 64}, data=data[1000:])
    assert oci_error(bad)[:2] == (400, "DIGEST_INVALID")
    # the upload survives a wrong digest; the right one completes it
    good = reg.put(location, params={"digest": Blob(data, "x").digest})
    assert good.status_code == 201
    missing = reg.put(location, params={"digest": Blob(data, "x").digest})
    assert oci_error(missing)[:2] == (404, "BLOB_UPLOAD_UNKNOWN")


def test_cancel_upload(reg):
    location = start(reg)
    reg.patch(location, data=b"abc")
    assert reg.delete(location).status_code == 204
    assert oci_error(reg.get(location))[:2] == (404, "BLOB_UPLOAD_UNKNOWN")
    assert oci_error(reg.patch(location, data=b"x"))[:2] == (404, "BLOB_UPLOAD_UNKNOWN")


def test_ranged_blob_reads(reg):
    data = os.urandom(100_000)
    blob = Blob(data, "x")
    reg.post("/v2/blobs/test/blobs/uploads/", params={"digest": blob.digest}, data=data)
    url = f"/v2/blobs/test/blobs/{blob.digest}"
    r = reg.get(url, headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["Content-Range"] == f"bytes 10-19/{len(data)}" and r.headers["Content-Length"] == "10"
    r = reg.get(url, headers={"Range": "bytes=99990-"})
    assert r.status_code == 206 and r.content == data[99990:]
    r = reg.get(url, headers={"Range": "bytes=-5"})
    assert r.status_code == 206 and r.content == data[-5:]
    r = reg.get(url, headers={"Range": "bytes=200000-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == f"bytes */{len(data)}"
    head = reg.head(url, headers={"Range": "bytes=0-99"})
    assert head.status_code == 206 and head.headers["Content-Length"] == "100" and head.content == b""


def test_blob_errors(reg):
    unknown = "sha256:" + "e" * 64
    assert oci_error(reg.get(f"/v2/blobs/test/blobs/{unknown}"))[:2] == (404, "BLOB_UNKNOWN")
    head = reg.head(f"/v2/blobs/test/blobs/{unknown}")
    assert head.status_code == 404 and head.content == b""
    assert oci_error(reg.get("/v2/blobs/test/blobs/not-a-digest"))[:2] == (400, "DIGEST_INVALID")
    assert oci_error(reg.get(f"/v2/nope/blobs/{unknown}"))[:2] == (404, "NAME_UNKNOWN")
    assert oci_error(reg.get(f"/v2/Bad_Name/blobs/{unknown}"))[:2] == (400, "NAME_INVALID")
    assert oci_error(reg.post("/v2/missing/repo/blobs/uploads/")) == (
        404, "NAME_UNKNOWN",
        "The repository with name 'missing/repo' does not exist in the registry with id '123456789012'",
    )
    assert oci_error(reg.delete(f"/v2/blobs/test/blobs/{unknown}"))[:2] == (405, "UNSUPPORTED")
    assert oci_error(reg.get("/v2/blobs/test/blobs/uploads/nope"))[:2] == (404, "BLOB_UPLOAD_UNKNOWN")


def test_blobs_are_per_repository_on_the_wire(reg, ecr):
    ecr.create_repository(repositoryName="other")
    blob = Blob(os.urandom(100), "x")
    reg.post("/v2/blobs/test/blobs/uploads/", params={"digest": blob.digest}, data=blob.data)
    assert reg.head(f"/v2/other/blobs/{blob.digest}").status_code == 404


def test_cross_repository_mount_follows_blob_mounting(reg, ecr):
    ecr.create_repository(repositoryName="target")
    blob = Blob(os.urandom(1000), "x")
    reg.post("/v2/blobs/test/blobs/uploads/", params={"digest": blob.digest}, data=blob.data)
    params = {"mount": blob.digest, "from": "blobs/test"}
    off = reg.post("/v2/target/blobs/uploads/", params=params)
    assert off.status_code == 202  # BLOB_MOUNTING is DISABLED by default: a normal upload starts
    ecr.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    on = reg.post("/v2/target/blobs/uploads/", params=params)
    assert on.status_code == 201
    assert on.headers["Location"] == f"/v2/target/blobs/{blob.digest}"
    assert on.headers["Docker-Content-Digest"] == blob.digest
    assert reg.get(f"/v2/target/blobs/{blob.digest}").content == blob.data
    # a source that does not hold the blob, or differs in encryption, falls back to upload
    ecr.create_repository(repositoryName="kms", encryptionConfiguration={"encryptionType": "KMS"})
    assert reg.post("/v2/kms/blobs/uploads/", params=params).status_code == 202
    missing = {"mount": "sha256:" + "1" * 64, "from": "blobs/test"}
    assert reg.post("/v2/target/blobs/uploads/", params=missing).status_code == 202


def test_api_and_registry_see_the_same_blobs(reg, ecr, server):
    image = build_image()
    push_via_api(ecr, "blobs/test", image, "api")
    for blob in image.blobs:
        assert reg.get(f"/v2/blobs/test/blobs/{blob.digest}").content == blob.data
    other = build_image()
    push_via_registry(reg, server.registry_url, "blobs/test", other, "wire")
    avail = ecr.batch_check_layer_availability(repositoryName="blobs/test",
                                               layerDigests=[b.digest for b in other.blobs])
    assert sorted(layer["layerDigest"] for layer in avail["layers"]) == sorted(b.digest for b in other.blobs)
