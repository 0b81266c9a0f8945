"""Uploads survive restarts; concurrent pushes of the same layers and tags leave consistent state."""

from __future__ import annotations

import os
import threading

import requests

from tests.conftest import make_client
from tests.images import Blob, basic_auth, build_image, push_via_registry, random_layer
from tests.server import start_server


def test_chunked_upload_resumes_after_restart(tmp_path):
    data_dir = tmp_path / "data"
    data = os.urandom(3 * 1024 * 1024)
    blob = Blob(data, "x")
    first = start_server(data_dir)
    try:
        ecr = make_client(first)
        ecr.create_repository(repositoryName="resume")
        s = requests.Session()
        s.headers["Authorization"] = basic_auth(ecr)
        location = s.post(f"{first.registry_url}/v2/resume/blobs/uploads/").headers["Location"]
        r = s.patch(first.registry_url + location, data=data[:1_000_000], headers={"Content-Range": "0-999999"})
        assert r.status_code == 202
    finally:
        assert first.stop() == 0
    second = start_server(data_dir)
    try:
        status = s.get(second.registry_url + location)
        assert status.status_code == 204 and status.headers["Range"] == "0-999999"
        r = s.patch(second.registry_url + location, data=data[1_000_000:],
                    headers={"Content-Range": f"1000000-{len(data) - 1}"})
        assert r.status_code == 202
        done = s.put(second.registry_url + location, params={"digest": blob.digest})
        assert done.status_code == 201, done.text
        assert s.get(f"{second.registry_url}/v2/resume/blobs/{blob.digest}").content == data
    finally:
        second.stop()


def test_concurrent_pushes_of_same_layers_and_tag(server, ecr):
    ecr.create_repository(repositoryName="race")
    shared = random_layer(400_000)
    images = [build_image([shared, random_layer(1000)]) for _ in range(6)]
    same = build_image([shared])
    errors: list[BaseException] = []

    def pusher(image):
        try:
            s = requests.Session()
            s.headers["Authorization"] = basic_auth(make_client(server))
            push_via_registry(s, server.registry_url, "race", image, "latest")
            push_via_registry(s, server.registry_url, "race", same, "same")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=pusher, args=(img,)) for img in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    details = ecr.describe_images(repositoryName="race")["imageDetails"]
    digests = {d["imageDigest"] for d in details}
    assert digests == {i.digest for i in images} | {same.digest}
    holders = [d for d in details if "latest" in d.get("imageTags", [])]
    assert len(holders) == 1  # exactly one image holds the tag, the others are untagged
    assert [d for d in details if d["imageDigest"] == same.digest][0]["imageTags"] == ["same"]
    s = requests.Session()
    s.headers["Authorization"] = basic_auth(ecr)
    layer_digest = Blob(shared, "x").digest
    assert s.get(f"{server.registry_url}/v2/race/blobs/{layer_digest}").content == shared
    ids = ecr.list_images(repositoryName="race")["imageIds"]
    assert len([i for i in ids if i.get("imageTag") == "latest"]) == 1
