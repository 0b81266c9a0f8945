"""Two replicas act as one registry: ``serve`` processes on different data directories (standing
in for different hosts) sharing one PostgreSQL database and one S3 bucket, nothing else. Pushes
split across them, uploads continued on the other replica chunk by chunk, a replica killed
mid-upload, background jobs that run once, one clock and one token secret.

PostgreSQL is started for this module whatever backend the rest of the suite runs on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

import pytest
import requests
from sqlalchemy import create_engine, text

from tests import postgres
from tests.conftest import make_client
from tests.images import build_image, push_via_api, random_layer, registry_session, sha, write_oci_layout
from tests.roundrobin import RoundRobinProxy
from tests.scan_images import alpine_image, ubuntu_image
from tests.server import LiveServer, start_server
from tests.tools import need, run

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def shared(s3, tmp_path_factory):  # type: ignore[no-untyped-def]
    """What the replicas share: the database URL and the store's settings."""
    bucket = s3.new_bucket()
    env = dict(s3.env(), ECR_EMULATOR_DATABASE_URL=postgres.new_database(), ECR_EMULATOR_BLOB_STORE=f"s3://{bucket}/r")
    return {"env": env, "root": tmp_path_factory.mktemp("replicas")}


def _replica(shared, name: str) -> LiveServer:  # type: ignore[no-untyped-def]
    return start_server(shared["root"] / name, env=shared["env"])


@pytest.fixture(scope="module")
def replicas(shared):  # type: ignore[no-untyped-def]
    pair = [_replica(shared, "host-a"), _replica(shared, "host-b")]
    yield pair
    for live in pair:
        live.stop()


@pytest.fixture(autouse=True)
def _fresh(replicas) -> None:  # type: ignore[no-untyped-def]
    replicas[0].reset()


def _rows(shared, query: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    engine = create_engine(shared["env"]["ECR_EMULATOR_DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(query))]
    finally:
        engine.dispose()


def _login(live: LiveServer, tmp_path, host: str) -> str:  # type: ignore[no-untyped-def]
    """An auth file for ``host`` holding a password issued by ``live``."""
    need("skopeo")
    token = make_client(live).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    import base64

    password = base64.b64decode(token).decode().split(":", 1)[1]
    authfile = tmp_path / f"auth-{host.replace(':', '-')}.json"
    run("skopeo", "login", "--tls-verify=false", "--authfile", str(authfile), "-u", "AWS", "--password-stdin", host,
        input=password)
    return str(authfile)


def test_one_registry_one_clock_one_token_secret(replicas):
    a, b = replicas
    ecr_a, ecr_b = make_client(a), make_client(b)
    ecr_a.create_repository(repositoryName="shared/app")
    assert [r["repositoryName"] for r in ecr_b.describe_repositories()["repositories"]] == ["shared/app"]
    image = build_image()
    push_via_api(ecr_a, "shared/app", image, "v1")
    session = registry_session(ecr_a)  # a password issued by A ...
    manifest = session.get(f"{b.registry_url}/v2/shared/app/manifests/v1", headers={"Accept": image.media_type})
    assert manifest.status_code == 200 and manifest.content == image.manifest  # ... is good on B, at once
    for blob in image.blobs:
        assert session.get(f"{b.registry_url}/v2/shared/app/blobs/{blob.digest}").content == blob.data
    a.control("clock", {"set": 1_900_000_000})
    assert 1_900_000_000 <= b.control("clock")["now"] < 1_900_000_000 + 60
    a.control("clock", {"reset": True})
    assert abs(b.control("clock")["offset"]) < 1


def test_chunked_patches_alternate_between_replicas(replicas):
    """One upload: POST on A, then PATCHes taking turns on B and A (chunks below and above an
    object-store part), status asked of either, PUT on B; the blob pulls from A."""
    a, b = replicas
    ecr = make_client(a)
    ecr.create_repository(repositoryName="alternate")
    session = registry_session(ecr)
    sizes = [MIB, 6 * MIB + 7, 300, 9 * MIB, 2 * MIB + 1]
    data = os.urandom(sum(sizes))
    location = session.post(f"{a.registry_url}/v2/alternate/blobs/uploads/").headers["Location"]
    offset = 0
    for i, size in enumerate(sizes):
        target = (b, a)[i % 2]
        r = session.patch(target.registry_url + location, data=data[offset:offset + size],
                          headers={"Content-Range": f"{offset}-{offset + size - 1}"})
        assert r.status_code == 202, r.text
        offset += size
        status = session.get((a, b)[i % 2].registry_url + location)
        assert status.status_code == 204 and status.headers["Range"] == f"0-{offset - 1}"
    done = session.put(b.registry_url + location, params={"digest": sha(data)})
    assert done.status_code == 201, done.text
    assert session.get(f"{a.registry_url}/v2/alternate/blobs/{sha(data)}").content == data


def test_layer_parts_alternate_between_replicas(replicas):
    a, b = replicas
    clients = [make_client(a), make_client(b)]
    clients[0].create_repository(repositoryName="parts")
    data = os.urandom(17 * MIB)
    upload_id = clients[1].initiate_layer_upload(repositoryName="parts")["uploadId"]
    part = 5 * MIB
    for i, first in enumerate(range(0, len(data), part)):
        chunk = data[first:first + part]
        clients[i % 2].upload_layer_part(repositoryName="parts", uploadId=upload_id, partFirstByte=first,
                                         partLastByte=first + len(chunk) - 1, layerPartBlob=chunk)
    done = clients[0].complete_layer_upload(repositoryName="parts", uploadId=upload_id, layerDigests=[sha(data)])
    assert done["layerDigest"] == sha(data)
    found = clients[1].batch_check_layer_availability(repositoryName="parts", layerDigests=[sha(data)])
    assert found["layers"][0]["layerSize"] == len(data)


def test_skopeo_pushes_split_across_replicas(replicas, tmp_path):
    """skopeo pushes through a round-robin balancer (each connection to the next replica) and
    straight to each replica at the same time, images sharing layers; every image then pulls
    from both replicas."""
    a, b = replicas
    ecr = make_client(a)
    ecr.create_repository(repositoryName="split")
    base = random_layer(2 * MIB, seed="base")
    images = {f"v{i}": build_image([base, *(random_layer(300_000 + i) for _ in range(4))]) for i in range(3)}
    layout = write_oci_layout(tmp_path / "layout", images)
    proxy = RoundRobinProxy([a.registry_port, b.registry_port])
    try:
        balanced = f"localhost:{proxy.port}"
        auth = {host: _login(a, tmp_path, host) for host in (balanced, a.registry, b.registry)}
        targets = [(balanced, "v0"), (a.registry, "v1"), (b.registry, "v2")]
        failures: list[BaseException] = []

        def push(host: str, tag: str) -> None:
            try:
                run("skopeo", "copy", "--dest-tls-verify=false", "--authfile", auth[host], f"oci:{layout}:{tag}",
                    f"docker://{host}/split:{tag}")
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

        threads = [threading.Thread(target=push, args=target) for target in targets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        assert failures == []
        assert min(proxy.connections) >= 1, proxy.connections  # the balanced push reached both replicas
        for live in (a, b):
            for tag, image in images.items():
                out = tmp_path / f"pulled-{live.registry_port}-{tag}"
                run("skopeo", "copy", "--src-tls-verify=false", "--authfile", auth[live.registry],
                    f"docker://{live.registry}/split:{tag}", f"oci:{out}:{tag}")
                for blob in image.blobs:
                    assert (out / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes() == blob.data
    finally:
        proxy.close()


def test_a_replica_killed_mid_upload_loses_nothing_committed(shared, replicas):
    """A third replica takes a push and is killed (SIGKILL) while streaming a layer. What it
    committed pulls from B; the interrupted upload resumes on B from what was recorded, once the
    dead replica's lease on it has run out."""
    b = replicas[1]
    doomed = _replica(shared, "host-c")
    try:
        ecr = make_client(doomed)
        ecr.create_repository(repositoryName="survive")
        committed = build_image([random_layer(3 * MIB)])
        push_via_api(ecr, "survive", committed, "v1")
        session = registry_session(ecr)
        data = os.urandom(24 * MIB)
        location = session.post(f"{doomed.registry_url}/v2/survive/blobs/uploads/").headers["Location"]
        first = session.patch(doomed.registry_url + location, data=data[:6 * MIB],
                              headers={"Content-Range": f"0-{6 * MIB - 1}"})
        assert first.status_code == 202
        sent = threading.Event()

        def slow_body():  # type: ignore[no-untyped-def]
            for start in range(6 * MIB, len(data), MIB):
                yield data[start:start + MIB]
                if start >= 10 * MIB:
                    sent.set()
                time.sleep(0.2)

        def stream() -> None:
            try:
                session.patch(doomed.registry_url + location, data=slow_body(), timeout=60,
                              headers={"Content-Type": "application/octet-stream"})
            except requests.RequestException:
                pass  # the replica died under it, as intended

        streamer = threading.Thread(target=stream)
        streamer.start()
        assert sent.wait(60)
        os.killpg(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(30)
        streamer.join(60)
    finally:
        doomed.stop()
    survivor = registry_session(make_client(b))
    for blob in committed.blobs:
        assert survivor.get(f"{b.registry_url}/v2/survive/blobs/{blob.digest}").content == blob.data
    status = survivor.get(b.registry_url + location)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{6 * MIB - 1}"  # the recorded bytes
    started = time.monotonic()
    rest = survivor.patch(b.registry_url + location, data=data[6 * MIB:], timeout=60,
                          headers={"Content-Range": f"{6 * MIB}-{len(data) - 1}"})
    assert rest.status_code == 202, rest.text
    assert time.monotonic() - started < 20  # at most the dead replica's lease (10 s) was waited for
    assert survivor.put(b.registry_url + location, params={"digest": sha(data)}).status_code == 201
    assert survivor.get(f"{b.registry_url}/v2/survive/blobs/{sha(data)}").content == data


def test_background_jobs_run_once(shared, replicas):
    """Scan-on-push and lifecycle-after-push jobs are claimed by the job threads of both
    replicas and by `jobs/run` calls on both at the same moment: each job runs once (every
    replica logs the jobs it finished), and only as many images expire as the policy says."""
    a, b = replicas
    logged = [len(live.log()) for live in replicas]
    clients = [make_client(a), make_client(b)]
    clients[0].create_repository(repositoryName="jobs", imageScanningConfiguration={"scanOnPush": True})
    policy = {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                          "countNumber": 2}, "action": {"type": "expire"}}]}
    clients[1].put_lifecycle_policy(repositoryName="jobs", lifecyclePolicyText=json.dumps(policy))
    images = [build_image(), build_image(), ubuntu_image(), alpine_image()]  # the last two stay
    stop = threading.Event()

    def hammer(live: LiveServer) -> None:
        while not stop.is_set():
            requests.post(f"{live.api_url}/_emulator/jobs/run", json={}, timeout=120)

    hammers = [threading.Thread(target=hammer, args=(live,)) for live in (a, b)]
    for t in hammers:
        t.start()
    try:
        for i, image in enumerate(images):
            push_via_api(clients[i % 2], "jobs", image, f"t{i}")
            time.sleep(0.3)
        deadline = time.time() + 90
        while time.time() < deadline:
            if _rows(shared, "SELECT count(*) FROM jobs")[0][0] == 0:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        for t in hammers:
            t.join(120)
    assert _rows(shared, "SELECT kind, status, attempts FROM jobs") == []  # every job done, none failed
    done = [line for live, start in zip(replicas, logged, strict=True)
            for line in re.findall(r"job (\d+) \((\S+)\) done, attempt (\d+)", live.log()[start:])]
    ids = [job_id for job_id, _kind, _attempt in done]
    assert len(ids) == len(set(ids)), done  # no job finished twice
    assert {attempt for _id, _kind, attempt in done} == {"1"}, done  # nor was one taken over
    kinds = [kind for _id, kind, _attempt in done]
    assert kinds.count("scan-image") == len(images) and "lifecycle_run" in kinds, done
    kept = clients[1].describe_images(repositoryName="jobs")["imageDetails"]
    assert sorted(d["imageTags"][0] for d in kept) == ["t2", "t3"]
    for detail in kept:  # scanned from layers read out of the bucket
        assert detail["imageScanStatus"]["status"] == "COMPLETE", detail
