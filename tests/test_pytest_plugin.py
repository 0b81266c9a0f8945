"""The in-process server (ecr_emulator.testing) and the pytest plugin, used as a project would."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ecr_emulator import testing
from tests.tools import need

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "pytest"


def readme_example(number: int = 0) -> str:
    """The README's pytest section's Python examples, in order."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Testing your code: the pytest plugin", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n")[1 + number].split("```", 1)[0]


def test_readme_context_manager_example_runs():
    scope: dict = {}
    exec(readme_example(1), scope)  # noqa: S102 - the README's own example
    login = scope["login"]
    ecr = scope["ecr"]
    assert login.username == "AWS" and login.registry == f"localhost:{ecr.settings.registry_port}"
    assert not ecr.settings.data_path.exists()  # stopped and cleaned up on leaving the block


def test_sample_project_and_the_readme_example_use_the_installed_plugin(tmp_path):
    need("skopeo")
    project = tmp_path / "project"
    shutil.copytree(SAMPLE, project)
    (project / "test_readme_example.py").write_text(readme_example())
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", "--durations-min=0", "."],
        cwd=project, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"\b7 passed\b", proc.stdout), proc.stdout
    # the fixtures came from the entry point, not from anything in the sample project
    assert "def ecr_" not in (SAMPLE / "conftest.py").read_text()


def test_context_manager_serves_both_planes_and_cleans_up():
    with testing.server(default_account="210987654321", job_workers=0) as ecr:
        data_dir = ecr.settings.data_path
        client = ecr.client()
        repo = client.create_repository(repositoryName="ctx/app")["repository"]
        assert repo["registryId"] == "210987654321"
        assert repo["repositoryUri"] == f"{ecr.registry}/ctx/app"
        login = ecr.login()
        assert login.registry == ecr.registry and login.username == "AWS"
        tags = requests.get(f"{ecr.registry_url}/v2/ctx/app/tags/list", auth=(login.username, login.password),
                            timeout=10)
        assert tags.status_code == 200 and tags.json() == {"name": "ctx/app", "tags": []}
        assert requests.get(f"{ecr.registry_url}/v2/", timeout=10).status_code == 401
        kept_alive = requests.Session()
        assert kept_alive.get(f"{ecr.api_url}/_emulator/health", timeout=10).ok
        ecr.clock.advance(3600)
        assert kept_alive.get(f"{ecr.api_url}/_emulator/clock", timeout=10).json()["offset"] >= 3599
        ecr.reset()
        assert client.describe_repositories()["repositories"] == []
        assert abs(ecr.clock.offset) < 1
    assert not data_dir.exists()
    # stopped means stopped, for new connections and for the kept-alive one alike
    for session in (requests, kept_alive):
        with pytest.raises(requests.ConnectionError):
            session.get(f"{ecr.api_url}/_emulator/health", timeout=2)


def test_env_points_unmodified_sdk_code_at_it(monkeypatch):
    import boto3

    with testing.server(job_workers=0) as ecr:
        for name, value in ecr.env(region="eu-west-1").items():
            monkeypatch.setenv(name, value)
        uri = boto3.client("ecr").create_repository(repositoryName="plain")["repository"]["repositoryUri"]
        assert uri == f"{ecr.registry_for(region='eu-west-1')}/plain"
        assert uri.startswith("123456789012.dkr.ecr.eu-west-1.localhost:")
        arn = boto3.client("ecr").describe_repositories()["repositories"][0]["repositoryArn"]
        assert arn == "arn:aws:ecr:eu-west-1:123456789012:repository/plain"


def test_in_process_server_over_https():
    with testing.server(tls=True, job_workers=0) as ecr:
        assert ecr.api_url.startswith("https://") and ecr.ca_bundle
        data = ecr.client().get_authorization_token()["authorizationData"][0]
        assert data["proxyEndpoint"] == f"https://{ecr.registry}"
        assert requests.get(f"{ecr.registry_url}/v2/", verify=ecr.ca_bundle, timeout=10).status_code == 401
        assert ecr.env()["AWS_CA_BUNDLE"] == ecr.ca_bundle


def moto_style_manifest() -> tuple[str, str]:
    """A manifest naming a config and a layer that were never uploaded, as moto-based tests put."""
    import hashlib
    import json

    def descriptor(media_type: str, seed: bytes) -> dict:
        return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(seed).hexdigest(), "size": 1234}

    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": descriptor("application/vnd.docker.container.image.v1+json", b"config"),
        "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip", b"layer")],
    })
    return manifest, "sha256:" + hashlib.sha256(b"layer").hexdigest()


def test_missing_layers_are_refused_by_default_as_on_ecr():
    manifest, _ = moto_style_manifest()
    with testing.server(job_workers=0) as ecr:
        client = ecr.client()
        client.create_repository(repositoryName="strict")
        with pytest.raises(client.exceptions.LayersNotFoundException):
            client.put_image(repositoryName="strict", imageManifest=manifest, imageTag="v1")


def test_allow_missing_layers_accepts_moto_style_images():
    manifest, layer = moto_style_manifest()
    with testing.server(job_workers=0, allow_missing_layers=True) as ecr:
        client = ecr.client()
        client.create_repository(repositoryName="lenient")
        digest = client.put_image(repositoryName="lenient", imageManifest=manifest, imageTag="v1")["image"][
            "imageId"]["imageDigest"]
        detail = client.describe_images(repositoryName="lenient")["imageDetails"][0]
        assert detail["imageTags"] == ["v1"] and detail["imageSizeInBytes"] == 2468  # as the manifest declares
        got = client.batch_get_image(repositoryName="lenient", imageIds=[{"imageTag": "v1"}])["images"][0]
        assert got["imageManifest"] == manifest
        login = ecr.login()
        blob = requests.get(f"{ecr.registry_url}/v2/lenient/blobs/{layer}", auth=(login.username, login.password),
                            timeout=10)
        assert blob.status_code == 404 and blob.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        put = requests.put(f"{ecr.registry_url}/v2/lenient/manifests/v2", data=manifest,
                           auth=(login.username, login.password), timeout=10,
                           headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
        assert put.status_code == 201
        client.start_image_scan(repositoryName="lenient", imageId={"imageDigest": digest})
        ecr.run_jobs()
        scan = client.describe_image_scan_findings(repositoryName="lenient", imageId={"imageDigest": digest})
        assert scan["imageScanStatus"]["status"] == "FAILED"
        assert "not available" in scan["imageScanStatus"]["description"]
        client.batch_delete_image(repositoryName="lenient", imageIds=[{"imageDigest": digest}])
        assert client.describe_images(repositoryName="lenient")["imageDetails"] == []
