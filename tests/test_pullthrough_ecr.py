"""ECR to ECR pull through cache: the upstream is another registry (account or region) of this
emulator, read in-process as the rule's role, with ECR's cross-account policies; ROOT rules and
upstreamRepositoryPrefix mapping; rules that lead back to themselves."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT
from tests.images import build_image, build_index, push_via_api
from tests.server import make_client

SOURCE = "210987654321"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ecr-ptc"


def upstream(account: str, region: str = "us-east-1") -> str:
    return f"{account}.dkr.ecr.{region}.amazonaws.com"


def test_across_accounts_with_the_upstream_policy(server, ecr, reg):
    src = make_client(server, access_key=SOURCE)  # a 12-digit key is that account
    src.create_repository(repositoryName="base/app")
    image = build_image()
    push_via_api(src, "base/app", image, "v1")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="mirror", upstreamRegistryUrl=upstream(SOURCE),
                                       customRoleArn=ROLE, upstreamRepositoryPrefix="base")
    denied = ecr.batch_get_image(repositoryName="mirror/app", imageIds=[{"imageTag": "v1"}])
    assert denied["failures"][0]["failureCode"] == "UpstreamAccessDenied"  # account 2109... does not share yet
    src.set_repository_policy(repositoryName="base/app", policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                                                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}))
    got = ecr.batch_get_image(repositoryName="mirror/app", imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageManifest"].encode() == image.manifest  # mirror/app -> base/app upstream
    r = reg.get(f"/v2/mirror/app/blobs/{image.layers[0].digest}")
    assert r.status_code == 200 and r.content == image.layers[0].data
    assert ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="mirror")["isValid"] is True


def test_root_rule_caches_every_repository_from_another_region(server, ecr):
    children = [build_image(architecture=a) for a in ("amd64", "arm64")]
    index = build_index(children)
    ecr.create_repository(repositoryName="svc/api")
    push_via_api(ecr, "svc/api", index, "multi")
    west = make_client(server, region="eu-west-1")
    west.create_pull_through_cache_rule(ecrRepositoryPrefix="ROOT", upstreamRegistryUrl=upstream(ACCOUNT),
                                        customRoleArn=ROLE)
    got = west.batch_get_image(repositoryName="svc/api", imageIds=[{"imageTag": "multi"}])
    assert got["images"][0]["imageManifest"].encode() == index.manifest
    digests = {d["imageDigest"] for d in west.describe_images(repositoryName="svc/api")["imageDetails"]}
    assert digests == {index.digest, *(c.digest for c in children)}
    missing = west.batch_get_image(repositoryName="svc/none", imageIds=[{"imageTag": "v1"}])
    assert missing["failures"][0]["failureCode"] == "ImageNotFound"
    assert [r["repositoryName"] for r in west.describe_repositories()["repositories"]] == ["svc/api"]


def test_rules_that_lead_back_are_refused_or_end(server, ecr):
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="self", upstreamRegistryUrl=upstream(ACCOUNT),
                                           customRoleArn=ROLE)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    west = make_client(server, region="eu-west-1")
    west.create_pull_through_cache_rule(ecrRepositoryPrefix="ROOT", upstreamRegistryUrl=upstream(ACCOUNT),
                                        customRoleArn=ROLE)
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ROOT", upstreamRegistryUrl=upstream(ACCOUNT, "eu-west-1"),
                                       customRoleArn=ROLE)
    got = ecr.batch_get_image(repositoryName="nowhere/app", imageIds=[{"imageTag": "v1"}])  # ends, not waits
    assert got["failures"][0]["failureCode"] == "ImageNotFound"
