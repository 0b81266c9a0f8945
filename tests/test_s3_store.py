"""``serve --blob-store s3://bucket/prefix`` against a real S3-compatible server (moto's, on
loopback): every blob and every in-flight upload lives in the bucket, real clients push and
pull, blob GETs redirect to presigned URLs when asked to, garbage collection runs online.

Some tests of other modules run here again unchanged, against the S3-backed server this
module's ``server`` fixture starts (imported below): skopeo round trips, and the races of
parts, chunks, garbage collection and lifecycle runs against pushes.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from tests.conftest import make_client
from tests.images import build_image, push_via_api, random_layer, registry_session, sha
from tests.server import eventually, start_server
from tests.test_clients import (  # noqa: F401 - tests run here on the S3-backed server (fixtures: conftest)
    test_skopeo_copy_all_multi_arch,
    test_skopeo_push_inspect_pull_roundtrip,
)
from tests.test_races import (  # noqa: F401 - the same races, on the S3-backed server
    _no_internal_errors,
    clients,
    test_concurrent_lifecycle_runs_and_pushes,
    test_garbage_collection_never_unlinks_what_a_push_is_committing,
    test_registry_chunks_claiming_the_same_offset,
    test_upload_layer_part_at_the_same_offset,
)
from tests.test_races import client as no_retry_client

MIB = 1024 * 1024
PREFIX = "registry"


@pytest.fixture(scope="module")
def bucket(s3) -> str:
    return s3.new_bucket()


@pytest.fixture(scope="module")
def server(s3, bucket, tmp_path_factory):  # type: ignore[no-untyped-def]
    live = start_server(tmp_path_factory.mktemp("s3") / "data", *s3.serve_args(bucket, PREFIX), env=s3.env())
    yield live
    live.stop()


def _keys(s3, bucket: str, under: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{under}")
    return [item["Key"] for item in listed.get("Contents", [])]


def _blob_key(digest: str) -> str:
    algo, hexpart = digest.split(":")
    return f"{PREFIX}/blobs/{algo}/{hexpart[:2]}/{hexpart}"


def test_blobs_and_uploads_live_in_the_bucket_not_the_data_dir(server, ecr, repo, s3, bucket):
    image = build_image([random_layer(300_000), random_layer(2000)])
    session = registry_session(ecr)
    location = session.post(f"{server.registry_url}/v2/{repo}/blobs/uploads/").headers["Location"]
    layer = image.layers[0].data
    r = session.patch(server.registry_url + location, data=layer[:100_000], headers={"Content-Range": "0-99999"})
    assert r.status_code == 202
    assert _keys(s3, bucket, "uploads/"), "an in-flight upload is staged in the bucket"
    push_via_api(ecr, repo, image, "v1")
    for blob in image.blobs:
        assert _blob_key(blob.digest) in _keys(s3, bucket, "blobs/")
        assert session.get(f"{server.registry_url}/v2/{repo}/blobs/{blob.digest}").content == blob.data
    assert not [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]
    assert not (server.data_dir / "uploads").exists() or not any((server.data_dir / "uploads").iterdir())


def test_chunks_smaller_than_an_object_store_part(server, ecr, repo):
    """PATCHes of 1 MiB (S3 parts must be 5 MiB but the last) make one blob, ranges included."""
    data = os.urandom(7 * MIB + 123)
    session = registry_session(ecr)
    location = session.post(f"{server.registry_url}/v2/{repo}/blobs/uploads/").headers["Location"]
    for start in range(0, len(data), MIB):
        chunk = data[start:start + MIB]
        r = session.patch(server.registry_url + location, data=chunk,
                          headers={"Content-Range": f"{start}-{start + len(chunk) - 1}"})
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
    assert session.put(server.registry_url + location, params={"digest": sha(data)}).status_code == 201
    url = f"{server.registry_url}/v2/{repo}/blobs/{sha(data)}"
    assert session.get(url).content == data
    part = session.get(url, headers={"Range": "bytes=5242879-5242890"})
    assert part.status_code == 206 and part.content == data[5242879:5242891]


def test_collection_removes_the_objects_of_deleted_images(server, ecr, repo, s3, bucket):
    keep, drop = build_image(), build_image()
    push_via_api(ecr, repo, keep, "keep")
    push_via_api(ecr, repo, drop, "drop")
    ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "drop"}])
    server.advance_clock(2 * 86400)  # the unreferenced links are now older than --upload-gc-age
    dropped = {_blob_key(b.digest) for b in drop.blobs}

    def collected() -> set[str] | None:
        # The collection is periodic on the emulator clock; a reset (before each test) forgets when
        # it last ran, so move the clock past its interval each time, then run it (unless a job
        # thread already has it).
        server.advance_clock(3600)
        server.run_jobs()
        stored = set(_keys(s3, bucket, "blobs/"))
        return None if dropped & stored else stored

    stored = eventually(collected, timeout=60, interval=0.5)
    assert {_blob_key(b.digest) for b in keep.blobs} <= stored
    session = registry_session(ecr)
    for blob in keep.blobs:
        assert session.get(f"{server.registry_url}/v2/{repo}/blobs/{blob.digest}").content == blob.data


def test_a_blob_whose_object_is_gone_is_missing_and_a_push_repairs_it(server, ecr, repo, s3, bucket):
    image = build_image()
    push_via_api(ecr, repo, image, "v1")
    layer = image.layers[0]
    s3.client().delete_object(Bucket=bucket, Key=_blob_key(layer.digest))
    check = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[layer.digest])
    assert check["failures"][0]["failureCode"] == "MissingLayerDigest"
    session = registry_session(ecr)
    r = session.post(f"{server.registry_url}/v2/{repo}/blobs/uploads/", params={"digest": layer.digest},
                     data=layer.data)
    assert r.status_code == 201
    assert session.get(f"{server.registry_url}/v2/{repo}/blobs/{layer.digest}").content == layer.data


def test_redirects_to_presigned_urls_when_asked(s3, bucket, tmp_path):
    live = start_server(tmp_path / "redirect", *s3.serve_args(bucket, "redirected"), "--blob-redirect",
                        env=s3.env())
    try:
        ecr = make_client(live)
        ecr.create_repository(repositoryName="direct")
        image = build_image([random_layer(500_000)])
        push_via_api(ecr, "direct", image, "v1")
        layer = image.layers[0]
        session = registry_session(ecr)
        url = f"{live.registry_url}/v2/direct/blobs/{layer.digest}"
        r = session.get(url, allow_redirects=False)
        assert r.status_code == 307 and r.headers["Location"].startswith(s3.endpoint_url + "/")
        assert r.headers["Docker-Content-Digest"] == layer.digest
        assert requests.get(r.headers["Location"], timeout=30).content == layer.data  # no credentials needed
        ranged = requests.get(r.headers["Location"], headers={"Range": "bytes=100-199"}, timeout=30)
        assert ranged.status_code == 206 and ranged.content == layer.data[100:200]
        head = session.head(url, allow_redirects=False)  # HEAD is answered here, with the size
        assert head.status_code == 200 and head.headers["Content-Length"] == str(layer.size)
        download = ecr.get_download_url_for_layer(repositoryName="direct", layerDigest=layer.digest)
        assert download["downloadUrl"].startswith(s3.endpoint_url + "/")
        assert requests.get(download["downloadUrl"], timeout=30).content == layer.data
        unknown = f"{live.registry_url}/v2/direct/blobs/{sha(b'never pushed')}"
        assert session.get(unknown, allow_redirects=False).status_code == 404  # no URL for what it does not hold
    finally:
        live.stop()


def test_a_missing_bucket_stops_the_start_with_the_reason(s3, tmp_path):
    env = dict(os.environ, **s3.env())
    proc = subprocess.run([sys.executable, "-m", "ecr_emulator", "gc", "--data-dir", str(tmp_path / "nobucket"),
                           "--blob-store", "s3://no-such-bucket-here/x"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode != 0
    assert "bucket 'no-such-bucket-here' does not exist" in proc.stderr


def test_an_unreachable_store_is_named_not_a_500(tmp_path):
    from tests import s3server

    own, live = s3server.start(), None
    try:
        live = start_server(tmp_path / "down", *own.serve_args(own.new_bucket()), env=own.env())
        ecr = no_retry_client(live)  # a 5xx is answered once, not retried by boto3
        ecr.create_repository(repositoryName="down")
        image = build_image()
        push_via_api(ecr, "down", image, "v1")
        own.stop()  # the object store goes away under a running registry
        session = registry_session(ecr)
        r = session.get(f"{live.registry_url}/v2/down/blobs/{image.layers[0].digest}", timeout=120)
        assert r.status_code == 503, r.text
        assert "could not use its blob store" in r.json()["errors"][0]["message"]
        with pytest.raises(ecr.exceptions.ServerException) as e:
            ecr.batch_check_layer_availability(repositoryName="down", layerDigests=[image.layers[0].digest])
        assert "could not use its blob store" in str(e.value)
        manifest = session.get(f"{live.registry_url}/v2/down/manifests/v1",
                               headers={"Accept": image.media_type})
        assert manifest.status_code == 200  # what the database alone answers keeps working
    finally:
        if live is not None:
            live.stop()
        own.stop()


def test_a_blob_store_that_is_not_s3_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ecr_emulator", "gc", "--data-dir", str(tmp_path / "x"),
                           "--blob-store", "ftp://host/path"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "blob store must be empty (the data directory) or s3://bucket" in proc.stderr
