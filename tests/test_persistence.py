"""Restart the server: every repository, image, tag, policy text and blob is still there."""

from __future__ import annotations

import json
import sqlite3

import requests

from tests.conftest import make_client
from tests.images import build_image, build_index, push_via_api, random_layer, registry_session
from tests.server import start_server


def test_restart_keeps_everything(tmp_path):
    data = tmp_path / "data"
    first = start_server(data)
    try:
        ecr = make_client(first)
        arn = ecr.create_repository(
            repositoryName="keep/me", imageTagMutability="IMMUTABLE",
            tags=[{"Key": "k", "Value": "v"}],
        )["repository"]["repositoryArn"]
        image = build_image([random_layer(100_000)])
        push_via_api(ecr, "keep/me", image, "v1")
        index = build_index([build_image(), build_image()])
        push_via_api(ecr, "keep/me", index, "multi")
        policy = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",'
                  '"Action":"ecr:BatchGetImage"}]}')
        ecr.set_repository_policy(repositoryName="keep/me", policyText=policy)
        ecr.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        before = ecr.describe_images(repositoryName="keep/me")["imageDetails"]
    finally:
        assert first.stop() == 0

    second = start_server(data)
    try:
        ecr = make_client(second)
        repo = ecr.describe_repositories()["repositories"][0]
        assert repo["repositoryName"] == "keep/me" and repo["imageTagMutability"] == "IMMUTABLE"
        assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "k", "Value": "v"}]
        assert json.loads(ecr.get_repository_policy(repositoryName="keep/me")["policyText"]) == json.loads(policy)
        assert ecr.get_account_setting(name="BLOB_MOUNTING")["value"] == "ENABLED"
        after = ecr.describe_images(repositoryName="keep/me")["imageDetails"]
        key = lambda d: d["imageDigest"]  # noqa: E731
        assert sorted(after, key=key) == sorted(before, key=key)
        got = ecr.batch_get_image(repositoryName="keep/me", imageIds=[{"imageTag": "v1"}])["images"][0]
        assert got["imageManifest"] == image.manifest.decode()
        # the token issued before the restart still logs in, and the blobs are served
        s = requests.Session()
        s.headers["Authorization"] = f"Basic {token}"
        for blob in image.blobs:
            assert s.get(f"{second.registry_url}/v2/keep/me/blobs/{blob.digest}").content == blob.data
        assert registry_session(ecr).get(f"{second.registry_url}/v2/keep/me/manifests/multi").content == index.manifest
    finally:
        second.stop()
    if second.database_url is None:  # the embedded default: SQLite in WAL mode under the data directory
        mode = sqlite3.connect(data / "ecr.db").execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
