"""The race tier: several clients on the same rows at the same moment. Every answer must be the
one ECR gives when the requests queue (RepositoryAlreadyExists, LimitExceeded for the scan
quota, InvalidLayerPart for a part that no longer continues the upload...), never a 500, on
SQLite and on PostgreSQL (the suite runs twice). Clients do not retry, so a 500 cannot hide
behind a successful second attempt.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.images import (
    OCI_CONFIG,
    OCI_LAYER,
    Blob,
    build_image,
    push_via_api,
    random_layer,
    registry_session,
    sha,
    upload_blob_via_api,
)

N = 8
NO_RETRY = Config(retries={"total_max_attempts": 1}, max_pool_connections=N * 2)


def client(server, access_key: str = "testing"):  # type: ignore[no-untyped-def]
    return boto3.client("ecr", endpoint_url=server.api_url, region_name="us-east-1", aws_access_key_id=access_key,
                        aws_secret_access_key="testing", config=NO_RETRY)


def at_once(fn: Callable[[int], Any], n: int = N) -> list[Any]:
    """``fn(i)`` for i in range(n), started together; each result is the value, or the AWS error code."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except ClientError as exc:
            results[i] = exc.response["Error"]["Code"]

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.fixture
def clients(server):  # type: ignore[no-untyped-def]
    return [client(server) for _ in range(N)]


@pytest.fixture(autouse=True)
def _no_internal_errors(server):  # type: ignore[no-untyped-def]
    before = len(server.log())
    yield
    tail = server.log()[before:]
    assert "internal error" not in tail and "Traceback" not in tail, tail[-3000:]


def test_create_repository_of_one_name(server, clients):
    for round_ in range(10):
        name = f"race/{round_}"
        results = at_once(lambda i, name=name: clients[i].create_repository(repositoryName=name) and "ok")
        assert Counter(results) == {"ok": 1, "RepositoryAlreadyExistsException": N - 1}, results


def test_put_account_setting_on_a_fresh_registry(server):
    for round_ in range(5):
        fresh = [client(server, f"2222{round_:04d}{n:04d}") for n in range(1)] * N
        values = ["ENABLED", "DISABLED"]
        results = at_once(lambda i, fresh=fresh, values=values: fresh[i].put_account_setting(
            name="BLOB_MOUNTING", value=values[i % 2])["value"])
        assert set(results) <= set(values), results
        assert fresh[0].get_account_setting(name="BLOB_MOUNTING")["value"] in values


def test_tag_resource_with_the_same_new_keys(server, clients):
    arn = clients[0].create_repository(repositoryName="tags")["repository"]["repositoryArn"]
    results = at_once(lambda i: clients[i].tag_resource(resourceArn=arn, tags=[{"Key": "team", "Value": str(i)},
                                                                               {"Key": "env", "Value": "ci"}]) and "ok")
    assert results == ["ok"] * N
    tags = clients[0].list_tags_for_resource(resourceArn=arn)["tags"]
    assert sorted(t["Key"] for t in tags) == ["env", "team"]


def test_start_image_scan_keeps_the_daily_quota(server, clients):
    clients[0].create_repository(repositoryName="scan")
    for round_ in range(3):
        push_via_api(clients[0], "scan", build_image(), f"v{round_}")
        results = at_once(lambda i, r=round_: clients[i].start_image_scan(
            repositoryName="scan", imageId={"imageTag": f"v{r}"})["imageScanStatus"]["status"])
        assert Counter(results) == {"IN_PROGRESS": 1, "LimitExceededException": N - 1}, results


def test_upload_layer_part_at_the_same_offset(server, clients):
    clients[0].create_repository(repositoryName="parts")
    parts = [random_layer(6 * 1024 * 1024, seed=f"part-{i}") for i in range(N)]
    upload_id = clients[0].initiate_layer_upload(repositoryName="parts")["uploadId"]
    results = at_once(lambda i: clients[i].upload_layer_part(
        repositoryName="parts", uploadId=upload_id, partFirstByte=0, partLastByte=len(parts[i]) - 1,
        layerPartBlob=parts[i])["lastByteReceived"])
    winners = [i for i, r in enumerate(results) if r == len(parts[i]) - 1]
    assert len(winners) == 1 and results.count("InvalidLayerPartException") == N - 1, results
    digest = sha(parts[winners[0]])
    done = clients[0].complete_layer_upload(repositoryName="parts", uploadId=upload_id, layerDigests=[digest])
    assert done["layerDigest"] == digest


@pytest.mark.parametrize("sizes", ["streamed", "read whole", "mixed"])
def test_registry_chunks_claiming_the_same_offset(server, ecr, sizes):
    """Bodies over 1 MiB stream under the upload's lease, smaller ones are appended under its row
    lock (and wait for a streamed one's lease): either way one chunk wins."""
    ecr.create_repository(repositoryName="chunks")
    session = registry_session(ecr)
    location = session.post(f"{server.registry_url}/v2/chunks/blobs/uploads/").headers["Location"]
    size = {"streamed": lambda i: 2 * 1024 * 1024, "read whole": lambda i: 100_000,
            "mixed": lambda i: 2 * 1024 * 1024 if i % 2 else 100_000}[sizes]
    chunks = [random_layer(size(i), seed=f"chunk-{i}") for i in range(N)]

    def send(i: int) -> int:
        s = registry_session(ecr)
        return s.patch(server.registry_url + location, data=chunks[i], timeout=60, headers={
            "Content-Range": f"0-{len(chunks[i]) - 1}", "Content-Type": "application/octet-stream"}).status_code

    results = at_once(send)
    assert Counter(results) == {202: 1, 416: N - 1}, results
    winner = chunks[results.index(202)]
    assert session.get(server.registry_url + location).headers["Range"] == f"0-{len(winner) - 1}"
    done = session.put(server.registry_url + location, params={"digest": sha(winner)})
    assert done.status_code == 201, done.text


def test_a_small_patch_waits_for_a_streamed_one(server, ecr):
    """A PATCH read whole finds the upload leased by a streamed PATCH still receiving its body: it
    waits for that one to finish, then continues the upload after its bytes."""
    ecr.create_repository(repositoryName="waits")
    session = registry_session(ecr)
    location = server.registry_url + session.post(f"{server.registry_url}/v2/waits/blobs/uploads/").headers["Location"]
    first, second, small = b"a" * 1000, b"b" * 1000, b"c" * 500
    release = threading.Event()

    def slow_body():  # type: ignore[no-untyped-def]
        yield first
        release.wait(30)
        yield second

    answers: dict[str, requests.Response] = {}
    streamed = threading.Thread(target=lambda: answers.setdefault(
        "streamed", registry_session(ecr).patch(location, data=slow_body(), timeout=60)))
    streamed.start()
    time.sleep(0.5)  # the streamed PATCH has taken the lease and waits for the rest of its body
    waiting = threading.Thread(target=lambda: answers.setdefault(
        "small", registry_session(ecr).patch(location, data=small, timeout=60)))
    waiting.start()
    time.sleep(0.5)
    assert "small" not in answers  # still waiting for the lease
    release.set()
    streamed.join(60)
    waiting.join(60)
    assert answers["streamed"].status_code == 202 and answers["streamed"].headers["Range"] == "0-1999"
    assert answers["small"].status_code == 202 and answers["small"].headers["Range"] == "0-2499"
    done = session.put(location, params={"digest": sha(first + second + small)})
    assert done.status_code == 201, done.text


def test_put_image_of_one_new_manifest_and_tag(server, clients):
    clients[0].create_repository(repositoryName="same")
    image = build_image()
    for blob in image.blobs:
        upload_blob_via_api(clients[0], "same", blob)
    results = at_once(lambda i: clients[i].put_image(repositoryName="same", imageTag="v1",
                                                     imageManifest=image.manifest.decode()) and "ok")
    assert Counter(results) == {"ok": 1, "ImageAlreadyExistsException": N - 1}, results


def test_pushes_while_the_repository_is_deleted(server, clients):
    for round_ in range(3):
        name = f"doomed-{round_}"
        clients[0].create_repository(repositoryName=name)
        images = [build_image() for i in range(N - 1)]
        for image in images:
            for blob in image.blobs:
                upload_blob_via_api(clients[0], name, blob)

        def act(i: int, name: str = name, images: list = images) -> str:
            if i == N - 1:
                return clients[i].delete_repository(repositoryName=name, force=True) and "deleted"
            return clients[i].put_image(repositoryName=name, imageTag=f"t{i}",
                                        imageManifest=images[i].manifest.decode()) and "ok"

        results = at_once(act)
        assert results[-1] == "deleted" and set(results[:-1]) <= {"ok", "RepositoryNotFoundException"}, results


def test_garbage_collection_never_unlinks_what_a_push_is_committing(server, clients):
    """Blobs uploaded long ago (older than the collector's age) are referenced by PutImage calls
    made while the collector runs: each push either finds its layers or is refused, and every
    pushed image stays pullable."""
    clients[0].create_repository(repositoryName="gc-race")
    session = registry_session(clients[0])
    for round_ in range(4):
        images = [build_image() for i in range(N - 1)]
        for image in images:
            for blob in image.blobs:
                upload_blob_via_api(clients[0], "gc-race", blob)
        server.advance_clock(2 * 86400)  # the links are now older than --upload-gc-age

        def act(i: int, images: list = images, round_: int = round_) -> str:
            if i == N - 1:
                requests.post(f"{server.api_url}/_emulator/jobs/run", json={}, timeout=120).raise_for_status()
                return "gc"
            return clients[i].put_image(repositoryName="gc-race", imageTag=f"r{round_}-{i}",
                                        imageManifest=images[i].manifest.decode()) and "ok"

        results = at_once(act)
        assert set(results[:-1]) <= {"ok", "LayersNotFoundException"}, results
        session.headers["Authorization"] = registry_session(clients[0]).headers["Authorization"]
        for i, result in enumerate(results[:-1]):
            if result == "ok":
                for blob in images[i].blobs:
                    r = session.get(f"{server.registry_url}/v2/gc-race/blobs/{blob.digest}", timeout=60)
                    assert r.status_code == 200 and r.content == blob.data, (round_, i, r.status_code)


def test_concurrent_lifecycle_runs_and_pushes(server, clients):
    """Lifecycle expiry (which releases blobs in its own batches) racing pushes of new images
    that share a layer with the expired ones: the shared layer stays pullable."""
    clients[0].create_repository(repositoryName="lc-race")
    shared = Blob(random_layer(4096, seed="shared"), OCI_LAYER)  # a gzip'd tar, as every layer
    policy = {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                          "countNumber": 1}, "action": {"type": "expire"}}]}
    clients[0].put_lifecycle_policy(repositoryName="lc-race", lifecyclePolicyText=json.dumps(policy))
    session = registry_session(clients[0])
    for round_ in range(3):
        images = [build_image([shared.data, random_layer()]) for _ in range(N - 1)]

        def act(i: int, images: list = images, round_: int = round_) -> str:  # type: ignore[no-redef]
            if i == N - 1:
                requests.post(f"{server.api_url}/_emulator/lifecycle/run", json={"repository": "lc-race"},
                              timeout=120).raise_for_status()
                return "lifecycle"
            for blob in images[i].blobs:  # racing uploads of the shared layer: one wins, as on ECR
                try:
                    upload_blob_via_api(clients[i], "lc-race", blob)
                except ClientError as exc:
                    assert exc.response["Error"]["Code"] == "LayerAlreadyExistsException"
            clients[i].put_image(repositoryName="lc-race", imageTag=f"lc-{round_}-{i}",
                                 imageManifest=images[i].manifest.decode())
            return "ok"

        assert at_once(act)[:-1] == ["ok"] * (N - 1)
        server.control("lifecycle/run", {"repository": "lc-race"})
        r = session.get(f"{server.registry_url}/v2/lc-race/blobs/{shared.digest}", timeout=60)
        assert r.status_code == 200 and r.content == shared.data


def test_image_config_media_type_is_scannable():
    # guards the scan-quota test above: build_image's config must be one a scan accepts
    assert build_image().blobs[0].media_type in (OCI_CONFIG, "application/vnd.docker.container.image.v1+json")
