"""A project's tests of code that uses Amazon ECR, run against ecr-emulator's pytest fixtures."""

from __future__ import annotations

import subprocess

import boto3


def publish(repository: str) -> str:
    """The "application": create a repository if needed and return its URI."""
    ecr = boto3.client("ecr")
    try:
        return ecr.create_repository(repositoryName=repository)["repository"]["repositoryUri"]
    except ecr.exceptions.RepositoryAlreadyExistsException:
        return ecr.describe_repositories(repositoryNames=[repository])["repositories"][0]["repositoryUri"]


def test_unmodified_code_talks_to_the_emulator(ecr_env, ecr_server):
    uri = publish("my-app/api")
    assert uri == f"{ecr_server.registry}/my-app/api"
    assert publish("my-app/api") == uri


def test_each_test_starts_empty(ecr_client):
    assert ecr_client.describe_repositories()["repositories"] == []


def test_push_with_skopeo_then_describe(ecr_client, ecr_registry, oci_image):
    ecr_client.create_repository(repositoryName="app")
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-authfile", ecr_registry.auth_file,
                    oci_image, f"docker://{ecr_registry.registry}/app:v1"], check=True, timeout=120)
    detail = ecr_client.describe_images(repositoryName="app")["imageDetails"]
    assert [d["imageTags"] for d in detail] == [["v1"]]


def test_the_clock_moves_when_told(ecr_client, ecr_clock):
    ecr_clock.set(1_900_000_000)
    ecr_client.create_repository(repositoryName="dated")
    created = ecr_client.describe_repositories()["repositories"][0]["createdAt"]
    assert 1_900_000_000 <= created.timestamp() < 1_900_000_060  # the clock keeps running from there
    ecr_clock.advance(13 * 3600)
    assert ecr_clock.now() >= 1_900_000_000 + 13 * 3600


def test_token_expires_on_the_emulator_clock(ecr_client, ecr_registry, ecr_clock, oci_image):
    ecr_client.create_repository(repositoryName="app")
    ecr_clock.advance(12 * 3600 + 60)  # ECR tokens last 12 hours
    proc = subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--dest-authfile",
                           ecr_registry.auth_file, oci_image, f"docker://{ecr_registry.registry}/app:v1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "403 (Forbidden)" in proc.stderr  # ECR's DENIED "Your authorization token has expired"
