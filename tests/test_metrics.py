"""Prometheus /metrics as a user scrapes it: after real boto3 calls and skopeo pushes and pulls,
with two worker processes, parsed with prometheus_client's own parser."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from ecr_emulator.api import protocol
from ecr_emulator.registry.app import ROUTES
from tests.conftest import ACCOUNT, REGION, make_client
from tests.images import build_image, random_layer, write_oci_layout
from tests.server import start_server
from tests.tools import need, run

AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/ecr/aws4_request, SignedHeaders=host, "
        "Signature=abc")
REPO = "metrics/app"


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    (tmp / "tmp").mkdir()
    server = start_server(tmp / "data", "--workers", "2", "--job-workers", "0", env={"TMPDIR": str(tmp / "tmp")})
    server.tmp = tmp / "tmp"  # type: ignore[attr-defined]
    yield server
    server.stop()


def samples_of(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    resp = requests.get(f"{base}/metrics", headers={"Connection": "close"}, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    return samples_of(resp.text)


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def api_call(live, op: str, body: dict | None = None) -> requests.Response:
    return requests.post(live.api_url + "/", data=json.dumps(body or {}), timeout=30,
                         headers={"X-Amz-Target": protocol.TARGET_PREFIX + op, "Authorization": AUTH,
                                  "Content-Type": "application/x-amz-json-1.1", "Connection": "close"})


def worker_pids(live) -> set[int]:
    seen = set()
    for _ in range(200):
        seen.add(requests.get(f"{live.api_url}/healthz", headers={"Connection": "close"}, timeout=10).json()["pid"])
        if len(seen) >= 2:
            break
    return seen


def test_requests_bytes_jobs_and_contents_across_two_workers(live, tmp_path):
    need("skopeo")
    ecr = make_client(live)
    ecr.create_repository(repositoryName=REPO, imageScanningConfiguration={"scanOnPush": True})
    ecr.create_repository(repositoryName="metrics/other")
    calls = 40
    for _ in range(calls):  # a new connection each, so both workers serve some
        assert api_call(live, "DescribeRepositories").status_code == 200
    assert api_call(live, "NoSuchOperation").status_code == 400
    served_by = {int(pid) for pid in re.findall(r"\[(\d+)\] INFO ecr_emulator\.api: api DescribeRepositories 200",
                                                  live.log())}
    assert len(served_by) == 2, "the calls should have reached both worker processes"

    # a real push and pull with skopeo, logged in with the token boto3 got
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    authfile = tmp_path / "auth.json"
    password = base64.b64decode(token).decode().split(":", 1)[1]
    run("skopeo", "login", "--tls-verify=false", "--authfile", str(authfile), "-u", "AWS", "--password-stdin",
        live.registry, input=password)
    env = {"REGISTRY_AUTH_FILE": str(authfile)}
    image = build_image([random_layer(300_000), random_layer(70_000)])
    layout = write_oci_layout(tmp_path / "src", {"v1": image})
    run("skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{live.registry}/{REPO}:v1",
        env=env)
    run("skopeo", "copy", "--src-tls-verify=false", f"docker://{live.registry}/{REPO}:v1", f"oci:{tmp_path / 'dst'}:v1",
        env=env)
    blob_bytes = sum(b.size for b in image.blobs)

    m = scrape(live.api_url)
    assert value(m, "ecr_emulator_http_requests_total", listener="api", endpoint="DescribeRepositories",
                 status="200") == calls
    assert value(m, "ecr_emulator_http_requests_total", listener="api", endpoint="CreateRepository",
                 status="200") == 2
    assert value(m, "ecr_emulator_http_requests_total", listener="api", endpoint="unknown_operation",
                 status="400") == 1
    assert value(m, "ecr_emulator_http_request_duration_seconds_count", listener="api",
                 endpoint="DescribeRepositories") == calls
    assert value(m, "ecr_emulator_http_request_duration_seconds_bucket", listener="api",
                 endpoint="DescribeRepositories", le="+Inf") == calls
    assert value(m, "ecr_emulator_http_requests_total", listener="registry", endpoint="manifest_put",
                 status="201") == 1
    assert total(m, "ecr_emulator_http_requests_total", listener="registry", endpoint="upload_start") == 3
    # every byte skopeo pushed (two layers, the config, the manifest), and pulled back
    assert total(m, "ecr_emulator_pushed_bytes_total") == blob_bytes + len(image.manifest)
    assert value(m, "ecr_emulator_pushed_bytes_total", route="manifest_put") == len(image.manifest)
    assert value(m, "ecr_emulator_pulled_bytes_total", route="blob_get") == blob_bytes
    pulled_manifests = value(m, "ecr_emulator_pulled_bytes_total", route="manifest_get")
    assert pulled_manifests and pulled_manifests % len(image.manifest) == 0
    # what the registry holds, counted from the database
    assert value(m, "ecr_emulator_repositories", account=ACCOUNT, region=REGION) == 2
    assert value(m, "ecr_emulator_images", account=ACCOUNT, region=REGION, status="ACTIVE") == 1
    assert value(m, "ecr_emulator_stored_blobs") == len(image.blobs)
    assert value(m, "ecr_emulator_stored_blob_bytes") == blob_bytes
    assert value(m, "ecr_emulator_database_up") == 1
    assert value(m, "ecr_emulator_vulnerability_advisories") == 8  # the shipped seed
    # the push queued a scan (no background workers here): queued, then run on demand
    assert value(m, "ecr_emulator_jobs", kind="scan-image", status="pending") == 1
    assert live.run_jobs()["succeeded"] >= 1
    after = scrape(live.registry_url)  # the registry listener serves the same figures
    assert value(after, "ecr_emulator_jobs", kind="scan-image", status="pending") == 0
    assert value(after, "ecr_emulator_job_runs_total", kind="scan-image", outcome="succeeded") == 1
    assert value(after, "ecr_emulator_job_duration_seconds_count", kind="scan-image") == 1
    assert value(after, "ecr_emulator_http_requests_total", listener="api", endpoint="DescribeRepositories",
                 status="200") == calls

    # labels are operation and route names, never raw paths
    requests.get(f"{live.registry_url}/v2/{REPO}/no/such/route/{os.urandom(4).hex()}", timeout=10)
    endpoints = {dict(ls)["endpoint"] for (n, ls) in scrape(live.api_url)
                 if n == "ecr_emulator_http_requests_total"}
    allowed = ({e.name for r in ROUTES for e in r.methods.values()} | set(protocol.operation_names())
               | {"unmatched", "unknown_operation"} | {"control.reset", "control.run_jobs"})
    assert endpoints <= allowed, endpoints - allowed
    assert "unmatched" in endpoints


def test_every_scrape_adds_up_all_workers_even_one_that_was_replaced(live):
    ecr = make_client(live)
    before = value(scrape(live.api_url), "ecr_emulator_http_requests_total", listener="api",
                   endpoint="ListImages", status="400")
    for _ in range(5):
        with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
            ecr.list_images(repositoryName="nope")
    pids = worker_pids(live)
    assert len(pids) == 2
    for _ in range(6):  # any worker may answer a scrape: each answers with every worker's counts
        assert value(scrape(live.api_url), "ecr_emulator_http_requests_total", listener="api",
                     endpoint="ListImages", status="400") == before + 5
    victim = min(pids)
    os.kill(victim, signal.SIGTERM)  # gunicorn replaces the worker; its counts stay counted
    deadline = time.time() + 30
    while time.time() < deadline and (victim in worker_pids(live) or len(worker_pids(live)) < 2):
        time.sleep(0.2)
    assert victim not in worker_pids(live)
    assert value(scrape(live.registry_url), "ecr_emulator_http_requests_total", listener="api",
                 endpoint="ListImages", status="400") == before + 5
    files = list(live.tmp.glob("ecr-emulator-metrics-*/*.db"))
    assert files, "the per-run multiprocess directory holds the workers' files"


def test_the_multiprocess_directory_goes_with_the_server(tmp_path):
    (tmp_path / "tmp").mkdir()
    server = start_server(tmp_path / "data", "--workers", "2", env={"TMPDIR": str(tmp_path / "tmp")})
    try:
        requests.get(f"{server.api_url}/metrics", timeout=10)
        assert len(list((tmp_path / "tmp").glob("ecr-emulator-metrics-*"))) == 1
    finally:
        assert server.stop() == 0
    assert list((tmp_path / "tmp").glob("ecr-emulator-metrics-*")) == []


def test_a_failing_job_is_counted_as_failed(tmp_path):
    """In-process: the jobs seam reports each run's outcome to the metrics."""
    from ecr_emulator import metrics
    from ecr_emulator.config import Settings
    from ecr_emulator.core import jobs
    from ecr_emulator.core.bootstrap import build_services
    from ecr_emulator.core.events import JobFinished

    services = build_services(Settings(data_dir=str(tmp_path / "data"), vulndb_seed="", job_workers=0))
    kind = f"test-fail-{os.urandom(3).hex()}"

    def broken(services, payload):  # type: ignore[no-untyped-def]
        raise RuntimeError("this job always fails")

    jobs.HANDLERS[kind] = broken
    services.events.subscribe(JobFinished, metrics.job_done)
    try:
        with services.unit(services.default_scope, write=True) as ctx:
            jobs.enqueue(ctx, kind, {})
        assert jobs.JobRunner(services).run_due() == {"succeeded": 0, "failed": 1}
        samples = samples_of(metrics.exposition(metrics.scrape_registry(services)).decode())
        assert value(samples, "ecr_emulator_job_runs_total", kind=kind, outcome="failed") == 1
        assert value(samples, "ecr_emulator_job_runs_total", kind=kind, outcome="succeeded") == 0
        assert value(samples, "ecr_emulator_jobs", kind=kind, status="pending") == 1  # queued for its retry
    finally:
        jobs.HANDLERS.pop(kind)
        services.db.dispose()
