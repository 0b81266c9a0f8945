"""The AWS CLI (v1, as pip installs it) against the live server."""

from __future__ import annotations

import base64
import json

from tests.images import build_image, push_via_api


def test_repository_lifecycle_with_cli(aws, server):
    out = json.loads(aws("ecr", "create-repository", "--repository-name", "cli/app",
                         "--image-tag-mutability", "IMMUTABLE").stdout)
    assert out["repository"]["repositoryUri"] == f"{server.registry}/cli/app"
    listed = json.loads(aws("ecr", "describe-repositories").stdout)
    assert [r["repositoryName"] for r in listed["repositories"]] == ["cli/app"]
    failed = aws("ecr", "describe-repositories", "--repository-names", "nope", check=False)
    assert failed.returncode != 0
    assert "RepositoryNotFoundException" in failed.stderr
    assert "The repository with name 'nope' does not exist in the registry with id '123456789012'" in failed.stderr
    bad = aws("ecr", "create-repository", "--repository-name", "Bad_Name", check=False)
    assert "InvalidParameterException" in bad.stderr
    aws("ecr", "delete-repository", "--repository-name", "cli/app")
    assert json.loads(aws("ecr", "describe-repositories").stdout)["repositories"] == []


def test_get_login_password_is_the_registry_password(aws, ecr, server):
    password = aws("ecr", "get-login-password").stdout.strip()
    assert password and ":" not in password
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, other_password = base64.b64decode(token).decode().partition(":")
    assert user == "AWS" and other_password
    import requests

    resp = requests.get(f"{server.registry_url}/v2/", auth=("AWS", password), timeout=10)
    assert resp.status_code == 200


def test_images_with_cli(aws, ecr):
    ecr.create_repository(repositoryName="cli-images")
    image = build_image()
    push_via_api(ecr, "cli-images", image, "v1")
    described = json.loads(aws("ecr", "describe-images", "--repository-name", "cli-images").stdout)
    assert described["imageDetails"][0]["imageDigest"] == image.digest
    assert isinstance(described["imageDetails"][0]["imagePushedAt"], float)  # CLI v1 prints epoch seconds
    listed = json.loads(aws("ecr", "list-images", "--repository-name", "cli-images").stdout)
    assert listed["imageIds"] == [{"imageDigest": image.digest, "imageTag": "v1"}]
    manifest = aws("ecr", "batch-get-image", "--repository-name", "cli-images", "--image-ids", "imageTag=v1",
                   "--query", "images[0].imageManifest").stdout
    assert json.loads(manifest) == image.manifest.decode()  # byte-exact, whitespace included
    retag = aws("ecr", "put-image", "--repository-name", "cli-images", "--image-tag", "prod",
                "--image-manifest", image.manifest.decode())
    assert json.loads(retag.stdout)["image"]["imageId"] == {"imageDigest": image.digest, "imageTag": "prod"}
    deleted = json.loads(aws("ecr", "batch-delete-image", "--repository-name", "cli-images",
                             "--image-ids", "imageTag=prod").stdout)
    assert deleted["imageIds"] == [{"imageDigest": image.digest, "imageTag": "prod"}]
