"""A full disk under the data directory: pulls of what is stored keep working, writes fail with
an error that names the cause (OCI error body on the registry, AWS-shaped on the API), and
everything works again once there is room. Runs on a small tmpfs the test mounts (as root)."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import make_client
from tests.images import Blob, build_image, push_via_api, push_via_registry, random_layer, registry_session
from tests.server import eventually, start_server


@pytest.fixture
def small_disk(tmp_path):  # type: ignore[no-untyped-def]
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> Path:
    """Take every free byte of the filesystem (until ENOSPC, in ever smaller writes)."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1024 * 1024, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def test_full_disk_keeps_pulls_working_and_names_the_cause_of_failed_writes(small_disk):
    server = start_server(small_disk / "data", "--job-workers", "0")
    try:
        ecr = make_client(server)
        ecr.create_repository(repositoryName="disk")
        image = build_image()
        push_via_api(ecr, "disk", image, "v1")
        session = registry_session(ecr)
        base = f"{server.registry_url}/v2/disk"

        filler = _fill(small_disk)
        # reads: manifest, blobs, the API, a new login
        r = session.get(f"{base}/manifests/v1", headers={"Accept": image.media_type})
        assert r.status_code == 200 and r.content == image.manifest
        for blob in image.blobs:
            assert session.get(f"{base}/blobs/{blob.digest}").content == blob.data
        assert ecr.describe_images(repositoryName="disk")["imageDetails"][0]["imageDigest"] == image.digest
        assert registry_session(make_client(server)).get(f"{base}/tags/list").json()["tags"] == ["v1"]

        # writes: a blob upload on the registry, an API write
        big = Blob(random_layer(4 * 1024 * 1024), "application/vnd.oci.image.layer.v1.tar+gzip")
        start = session.post(f"{base}/blobs/uploads/")
        if start.status_code == 202:  # the upload row may still fit; its bytes cannot
            r = session.put(server.registry_url + start.headers["Location"], params={"digest": big.digest},
                            data=big.data)
        else:
            r = start
        assert r.status_code == 507, r.text
        assert r.json()["errors"][0]["code"] == "UNKNOWN"
        message = r.json()["errors"][0]["message"].lower()
        assert "could not store" in message and ("no space left" in message or "disk is full" in message), message

        with pytest.raises(ClientError) as e:  # the layer API: the upload row, or at least its bytes, fail
            upload_id = ecr.initiate_layer_upload(repositoryName="disk")["uploadId"]
            ecr.upload_layer_part(repositoryName="disk", uploadId=upload_id, partFirstByte=0,
                                  partLastByte=len(big.data) - 1, layerPartBlob=big.data)
        err = e.value.response["Error"]
        assert err["Code"] == "ServerException" and "could not store" in err["Message"], err

        # room again: writes work, and the pull time noted meanwhile reaches the database
        filler.unlink()
        push_via_registry(session, server.registry_url, "disk", build_image(), "v2")
        eventually(lambda: ecr.describe_images(repositoryName="disk", imageIds=[{"imageTag": "v1"}])
                   ["imageDetails"][0].get("lastRecordedPullTime"), timeout=10)
        assert "Traceback" not in server.test_log(), server.test_log()[-4000:]
    finally:
        server.stop()
