"""The test-control API: reset, the injectable clock, and running background jobs now."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import make_client
from tests.images import build_image, push_via_api


def test_clock_set_advance_reset(server):
    before = server.control("clock")
    assert abs(before["offset"]) < 1
    moved = server.control("clock", {"advance": 86400})
    assert 86399 < moved["now"] - before["now"] < 86500
    target = 2_000_000_000
    at = server.control("clock", {"set": target})
    assert abs(at["now"] - target) < 5
    back = server.control("clock", {"reset": True})
    assert abs(back["offset"]) < 1
    r = requests.post(f"{server.api_url}/_emulator/clock", json={"advance": "soon"}, timeout=10)
    assert r.status_code == 400
    r = requests.post(f"{server.api_url}/_emulator/clock", json={}, timeout=10)
    assert r.status_code == 400


def test_clock_drives_timestamps(server, ecr):
    server.control("clock", {"set": 1_800_000_000})
    repo = ecr.create_repository(repositoryName="timed")["repository"]
    assert abs(repo["createdAt"].timestamp() - 1_800_000_000) < 60
    token = ecr.get_authorization_token()["authorizationData"][0]
    assert abs(token["expiresAt"].timestamp() - (1_800_000_000 + 12 * 3600)) < 60


def test_reset_wipes_every_account_and_region(server):
    clients = [make_client(server), make_client(server, access_key="999988887777"),
               make_client(server, region="ap-south-1")]
    for c in clients:
        c.create_repository(repositoryName="wipe")
    push_via_api(clients[0], "wipe", build_image(), "v1")
    server.reset()
    for c in clients:
        assert c.describe_repositories()["repositories"] == []
    blobs = list((server.data_dir / "blobs").rglob("*"))
    assert [p for p in blobs if p.is_file()] == []


def test_tokens_expire_on_the_emulator_clock(server, ecr):
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    headers = {"Authorization": f"Basic {token}"}
    assert requests.get(f"{server.registry_url}/v2/", headers=headers, timeout=10).status_code == 200
    server.advance_clock(12 * 3600 + 1)
    r = requests.get(f"{server.registry_url}/v2/", headers=headers, timeout=10)
    assert r.status_code == 403
    assert r.json()["errors"][0] == {
        "code": "DENIED",
        "message": "Your authorization token has expired. Reauthenticate and try again.",
        "detail": None,
    }


def test_jobs_run_collects_abandoned_uploads(server, ecr):
    ecr.create_repository(repositoryName="gc")
    uid = ecr.initiate_layer_upload(repositoryName="gc")["uploadId"]
    ecr.upload_layer_part(repositoryName="gc", uploadId=uid, partFirstByte=0, partLastByte=3, layerPartBlob=b"data")
    staged = server.data_dir / "uploads" / uid
    assert staged.exists()
    server.run_jobs()
    assert staged.exists()  # too young to collect
    server.advance_clock(2 * 86400)
    server.run_jobs()  # schedules the periodic GC
    server.run_jobs()
    assert not staged.exists()
    with pytest.raises(ecr.exceptions.UploadNotFoundException):  # the upload id is gone for the API too
        ecr.upload_layer_part(repositoryName="gc", uploadId=uid, partFirstByte=4, partLastByte=4, layerPartBlob=b"x")


def test_every_worker_process_reads_the_same_clock(server):
    """Workers share the emulator clock (an offset in the database)."""
    target = 1_900_000_000
    server.control("clock", {"set": target})
    seen: dict[int, float] = {}
    for _ in range(300):
        body = requests.get(f"{server.api_url}/_emulator/health", headers={"Connection": "close"},
                            timeout=10).json()
        seen[body["pid"]] = body["now"]
        if len(seen) >= 2:
            break
    assert len(seen) >= 2, "expected requests to reach more than one worker process"
    for now in seen.values():
        assert target <= now < target + 120


def test_the_clock_survives_a_restart(tmp_path):
    from tests.server import start_server

    first = start_server(tmp_path / "clocked")
    first.control("clock", {"advance": 30 * 86400})
    first.stop()
    second = start_server(tmp_path / "clocked")
    try:
        assert second.control("clock")["offset"] > 30 * 86400 - 60
    finally:
        second.stop()
