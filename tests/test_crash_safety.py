"""Crashes and damaged data directories: a reset killed with kill -9 at any moment leaves the
store either untouched or empty, never half-reset; a blob whose bytes are gone counts as
missing everywhere, so a client's re-push repairs it instead of being told it exists."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import make_client
from tests.errors import error_of
from tests.images import (
    Blob,
    build_image,
    push_via_api,
    push_via_registry,
    random_layer,
    registry_session,
    sha,
    upload_blob_via_api,
)
from tests.server import LiveServer, start_server

IMAGES = 40


def _blob_file(server: LiveServer, digest: str):  # type: ignore[no-untyped-def]
    algo, hexpart = digest.split(":")
    return server.data_dir / "blobs" / algo / hexpart[:2] / hexpart


def _kill(server: LiveServer) -> None:
    os.killpg(server.process.pid, signal.SIGKILL)
    server.process.wait(30)


def _check_whole_or_empty(server: LiveServer, pushed: dict[str, list]) -> str:
    """Either every repository and image is there and every blob pulls, or nothing is."""
    ecr = make_client(server)
    names = {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}
    if not names:
        return "reset"
    assert names == set(pushed), names
    session = registry_session(ecr)
    for name, images in pushed.items():
        assert len(ecr.describe_images(repositoryName=name)["imageDetails"]) == len(images)
        for image in images:
            for blob in image.blobs:
                available = ecr.batch_check_layer_availability(repositoryName=name, layerDigests=[blob.digest])
                assert [x["layerDigest"] for x in available["layers"]] == [blob.digest], available
                r = session.get(f"{server.registry_url}/v2/{name}/blobs/{blob.digest}", timeout=60)
                assert r.status_code == 200 and r.content == blob.data
    return "untouched"


def test_reset_killed_at_any_moment_is_all_or_nothing(tmp_path):
    data_dir = tmp_path / "data"
    outcomes = []
    for attempt, delay in enumerate((0.0, 0.01, 0.03, 0.06, 0.12)):
        server = start_server(data_dir)
        try:
            ecr = make_client(server)
            pushed: dict[str, list] = {}
            for r in range(4):
                name = f"crash-{attempt}-{r}"
                ecr.create_repository(repositoryName=name)
                pushed[name] = [build_image([random_layer(2048), random_layer(2048)]) for _ in range(IMAGES // 4)]
                for i, image in enumerate(pushed[name]):
                    push_via_api(ecr, name, image, f"v{i}")
            for name in [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]:
                if name not in pushed:  # what an earlier round kept when its reset did not commit
                    ecr.delete_repository(repositoryName=name, force=True)

            def reset(server: LiveServer = server) -> None:
                try:
                    requests.post(f"{server.api_url}/_emulator/reset", json={}, timeout=30)
                except requests.RequestException:
                    pass  # the server died under it, as intended

            thread = threading.Thread(target=reset)
            thread.start()
            time.sleep(delay)
            _kill(server)
            thread.join(30)
        finally:
            if server.process.poll() is None:
                server.stop()
        server = start_server(data_dir)
        try:
            outcomes.append(_check_whole_or_empty(server, pushed))
            # whatever happened, the store takes the same image again, and it pulls
            name = next(iter(pushed))
            ecr = make_client(server)
            if outcomes[-1] == "reset":
                ecr.create_repository(repositoryName=name)
            image = pushed[name][0]
            push_via_api(ecr, name, image, "again")
            session = registry_session(ecr)
            for blob in image.blobs:
                assert session.get(f"{server.registry_url}/v2/{name}/blobs/{blob.digest}").content == blob.data
        finally:
            server.stop()
    print(f"\nreset killed after 0-120 ms: {outcomes}")


@pytest.mark.parametrize("damage", ["gone", "cut short"])
def test_a_blob_whose_bytes_are_gone_counts_as_missing_and_a_push_repairs_it(server, ecr, repo, damage):
    """"cut short" is what a power loss can leave of a blob whose bytes the kernel had not yet
    written out (the blob store does not fsync: see storage/fsstore.py)."""
    image = build_image()
    push_via_api(ecr, repo, image, "v1")
    layer = image.blobs[1]
    if damage == "gone":
        _blob_file(server, layer.digest).unlink()
    else:
        os.truncate(_blob_file(server, layer.digest), len(layer.data) // 2)

    check = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[layer.digest])
    assert check["layers"] == [] and check["failures"][0]["failureCode"] == "MissingLayerDigest"
    session = registry_session(ecr)
    assert session.head(f"{server.registry_url}/v2/{repo}/blobs/{layer.digest}").status_code == 404
    assert session.get(f"{server.registry_url}/v2/{repo}/blobs/{layer.digest}").status_code == 404
    ecr.create_repository(repositoryName=f"{repo}-mount")
    ecr.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")

    def mount(digest: str) -> int:
        return session.post(f"{server.registry_url}/v2/{repo}-mount/blobs/uploads/",
                            params={"mount": digest, "from": repo}).status_code

    assert mount(image.blobs[0].digest) == 201  # an intact blob of the same repository mounts
    assert mount(layer.digest) == 202  # the damaged one does not: an upload begins instead
    other = build_image([layer.data])
    upload_blob_via_api(ecr, repo, other.blobs[0])
    with pytest.raises(ClientError) as e:
        ecr.put_image(repositoryName=repo, imageTag="other", imageManifest=other.manifest.decode())
    assert error_of(e)[0] == "LayersNotFoundException"

    upload_blob_via_api(ecr, repo, Blob(layer.data, layer.media_type))  # CompleteLayerUpload: not "already exists"
    assert session.get(f"{server.registry_url}/v2/{repo}/blobs/{layer.digest}").content == layer.data
    ecr.put_image(repositoryName=repo, imageTag="other", imageManifest=other.manifest.decode())


def test_kill_9_loses_no_acknowledged_write(tmp_path):
    """Writers on both planes at once (new repositories, PutImage, layer uploads, registry pushes);
    the server is killed with SIGKILL mid-stream, restarted, and every write it acknowledged is
    there: repositories, tags on the right manifests, blobs with their bytes. Acknowledged means
    committed before the response (SQLite's WAL with synchronous=NORMAL survives a killed process;
    only a power loss can take the last commits)."""
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    ecr = make_client(server)
    ecr.create_repository(repositoryName="kill/images")
    base = build_image()
    push_via_api(ecr, "kill/images", base, "base")
    acked: dict[str, list] = {"repositories": [], "tags": [], "blobs": []}
    lock = threading.Lock()
    stop = threading.Event()

    def note(kind: str, value) -> None:  # type: ignore[no-untyped-def]
        with lock:
            acked[kind].append(value)

    def create_repositories() -> None:
        client = make_client(server)
        for i in range(10_000):
            if stop.is_set():
                return
            client.create_repository(repositoryName=f"kill/r{i}")
            note("repositories", f"kill/r{i}")

    def put_images(worker: int) -> None:
        client = make_client(server)
        for i in range(10_000):
            if stop.is_set():
                return
            doc = json.loads(base.manifest)
            doc["annotations"] = {"n": f"{worker}-{i}"}
            raw = json.dumps(doc)
            client.put_image(repositoryName="kill/images", imageManifest=raw, imageTag=f"p{worker}-{i}")
            note("tags", ("kill/images", f"p{worker}-{i}", sha(raw.encode())))

    def upload_layers() -> None:
        client = make_client(server)
        while not stop.is_set():
            blob = Blob(os.urandom(3000), "application/octet-stream")
            upload_blob_via_api(client, "kill/images", blob)
            note("blobs", ("kill/images", blob))

    def registry_pushes() -> None:
        session = registry_session(make_client(server))
        for i in range(10_000):
            if stop.is_set():
                return
            image = build_image([random_layer(1024)])
            digest = push_via_registry(session, server.registry_url, "kill/images", image, f"g{i}")
            note("tags", ("kill/images", f"g{i}", digest))
            for blob in image.blobs:
                note("blobs", ("kill/images", blob))

    def quietly(fn, *args) -> None:  # type: ignore[no-untyped-def]
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - the server was killed under it: its last write is unacknowledged
            pass

    writers = [threading.Thread(target=quietly, args=(create_repositories,)),
               threading.Thread(target=quietly, args=(upload_layers,)),
               threading.Thread(target=quietly, args=(registry_pushes,))]
    writers += [threading.Thread(target=quietly, args=(put_images, w)) for w in range(4)]
    for t in writers:
        t.start()
    time.sleep(3)
    _kill(server)
    stop.set()
    for t in writers:
        t.join(60)
    assert all(acked.values()), {k: len(v) for k, v in acked.items()}  # each kind of write got through

    server = start_server(data_dir)
    try:
        ecr = make_client(server)
        names = {r["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate()
                 for r in page["repositories"]}
        assert set(acked["repositories"]) <= names
        for repo, tag, digest in acked["tags"]:
            got = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": tag}])["images"]
            assert [i["imageId"]["imageDigest"] for i in got] == [digest], (tag, got)
        session = registry_session(ecr)
        for repo, blob in acked["blobs"]:
            r = session.get(f"{server.registry_url}/v2/{repo}/blobs/{blob.digest}", timeout=60)
            assert r.status_code == 200 and r.content == blob.data, blob.digest
    finally:
        server.stop()
    print(f"\nacknowledged before kill -9 and found after: {({k: len(v) for k, v in acked.items()})}")
