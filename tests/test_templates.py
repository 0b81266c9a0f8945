"""Repository creation templates through boto3, and create-on-push through real registry clients."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.errors import error_of
from tests.images import build_image, push_via_registry, registry_session

ROLE = "arn:aws:iam::123456789012:role/ecr-templates"
POLICY = {"Version": "2012-10-17", "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": "*"},
                                                  "Action": ["ecr:BatchGetImage"]}]}
LIFECYCLE = {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                                         "countUnit": "days", "countNumber": 14},
                        "action": {"type": "expire"}}]}


def code(exc_info) -> str:  # type: ignore[no-untyped-def]
    return error_of(exc_info)[0]


def test_create_describe_update_delete(ecr):
    made = ecr.create_repository_creation_template(
        prefix="prod", description="production", appliedFor=["REPLICATION", "CREATE_ON_PUSH"],
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
        repositoryPolicy=json.dumps(POLICY), lifecyclePolicy=json.dumps(LIFECYCLE),
        resourceTags=[{"Key": "team", "Value": "core"}], customRoleArn=ROLE)
    template = made["repositoryCreationTemplate"]
    assert made["registryId"] == "123456789012"
    assert template["prefix"] == "prod" and template["appliedFor"] == ["REPLICATION", "CREATE_ON_PUSH"]
    assert template["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert json.loads(template["repositoryPolicy"]) == POLICY and json.loads(template["lifecyclePolicy"]) == LIFECYCLE
    assert template["createdAt"] == template["updatedAt"]

    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["PULL_THROUGH_CACHE"])
    listed = ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]
    assert [t["prefix"] for t in listed] == ["ROOT", "prod"]
    assert [t["prefix"] for t in ecr.describe_repository_creation_templates(prefixes=["prod/"])
            ["repositoryCreationTemplates"]] == ["prod"]
    page = ecr.describe_repository_creation_templates(maxResults=1)
    assert len(page["repositoryCreationTemplates"]) == 1
    rest = ecr.describe_repository_creation_templates(nextToken=page["nextToken"])["repositoryCreationTemplates"]
    assert [t["prefix"] for t in rest] == ["prod"]

    updated = ecr.update_repository_creation_template(prefix="prod", description="changed",
                                                      appliedFor=["REPLICATION"])["repositoryCreationTemplate"]
    assert updated["description"] == "changed" and updated["appliedFor"] == ["REPLICATION"]
    assert updated["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"  # what the update did not name stays
    deleted = ecr.delete_repository_creation_template(prefix="prod")["repositoryCreationTemplate"]
    assert deleted["prefix"] == "prod"
    with pytest.raises(ClientError) as e:
        ecr.delete_repository_creation_template(prefix="prod")
    assert code(e) == "TemplateNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.update_repository_creation_template(prefix="nope", description="x")
    assert code(e) == "TemplateNotFoundException"


@pytest.mark.parametrize("kwargs,expected", [
    ({"prefix": "dup/"}, "TemplateAlreadyExistsException"),  # the same prefix as "dup", with its implied "/"
    ({"prefix": "Bad Prefix"}, "InvalidParameterException"),
    ({"prefix": "x", "appliedFor": ["NOT_A_SCENARIO"]}, "InvalidParameterException"),
    ({"prefix": "x", "appliedFor": []}, "InvalidParameterException"),
    ({"prefix": "x", "resourceTags": [{"Key": "k", "Value": "v"}]}, "InvalidParameterException"),  # no role
    ({"prefix": "x", "encryptionConfiguration": {
        "encryptionType": "KMS", "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/abc"}}, "InvalidParameterException"),
    ({"prefix": "x", "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/mine"}},
     "InvalidParameterException"),  # a full key ARN only
    ({"prefix": "x", "customRoleArn": "not-a-role"}, "InvalidParameterException"),
    ({"prefix": "x", "repositoryPolicy": "{not json"}, "InvalidParameterException"),
    ({"prefix": "x", "lifecyclePolicy": json.dumps({"rules": []})}, "InvalidParameterException"),
    ({"prefix": "x", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"}, "InvalidParameterException"),
    ({"prefix": "x", "resourceTags": [{"Key": "aws:reserved", "Value": "v"}], "customRoleArn": ROLE},
     "InvalidTagParameterException"),
])
def test_template_validation(ecr, kwargs, expected):
    ecr.create_repository_creation_template(prefix="dup", appliedFor=["REPLICATION"])
    with pytest.raises(ClientError) as e:
        ecr.create_repository_creation_template(**{"appliedFor": ["REPLICATION"], **kwargs})
    assert code(e) == expected, error_of(e)
    assert [t["prefix"] for t in ecr.describe_repository_creation_templates()["repositoryCreationTemplates"]] == ["dup"]


def test_push_to_a_missing_repository_without_a_template_is_name_unknown(server, ecr):
    ecr.create_repository_creation_template(prefix="mirror", appliedFor=["REPLICATION"])  # not CREATE_ON_PUSH
    session = registry_session(ecr)
    for name in ("nothing/here", "mirror/app"):
        r = session.post(f"{server.registry_url}/v2/{name}/blobs/uploads/")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert ecr.describe_repositories()["repositories"] == []


def test_create_on_push_with_skopeo_uses_the_longest_matching_template(skopeo, server, ecr, tmp_path):
    from tests.images import write_oci_layout

    ecr.create_repository_creation_template(prefix="team", appliedFor=["CREATE_ON_PUSH"], imageTagMutability="MUTABLE")
    ecr.create_repository_creation_template(
        prefix="team/prod", appliedFor=["CREATE_ON_PUSH"], imageTagMutability="IMMUTABLE",
        repositoryPolicy=json.dumps(POLICY), lifecyclePolicy=json.dumps(LIFECYCLE),
        resourceTags=[{"Key": "env", "Value": "prod"}], customRoleArn=ROLE)
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH"],
                                            encryptionConfiguration={"encryptionType": "KMS"})
    image = build_image()
    layout = write_oci_layout(tmp_path / "layout", {"v1": image})
    for name in ("team/prod/api", "team/dev/api", "anything"):
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{server.registry}/{name}:v1")
    repos = {r["repositoryName"]: r for r in ecr.describe_repositories()["repositories"]}
    assert set(repos) == {"team/prod/api", "team/dev/api", "anything"}
    prod = repos["team/prod/api"]
    assert prod["imageTagMutability"] == "IMMUTABLE"
    assert json.loads(ecr.get_repository_policy(repositoryName="team/prod/api")["policyText"]) == POLICY
    assert json.loads(ecr.get_lifecycle_policy(repositoryName="team/prod/api")["lifecyclePolicyText"]) == LIFECYCLE
    assert ecr.list_tags_for_resource(resourceArn=prod["repositoryArn"])["tags"] == [{"Key": "env", "Value": "prod"}]
    assert repos["team/dev/api"]["imageTagMutability"] == "MUTABLE"
    with pytest.raises(ClientError):
        ecr.get_repository_policy(repositoryName="team/dev/api")
    assert repos["anything"]["encryptionConfiguration"]["encryptionType"] == "KMS"
    for name in repos:
        assert ecr.describe_images(repositoryName=name)["imageDetails"][0]["imageDigest"] == image.digest
    # the prefix's implied "/": "team" itself is not covered by the "team" template, but ROOT covers it
    push_via_registry(registry_session(ecr), server.registry_url, "team", build_image(), "v1")
    assert ecr.describe_repositories(repositoryNames=["team"])["repositories"][0]["encryptionConfiguration"][
        "encryptionType"] == "KMS"


def test_create_repository_never_uses_a_template(ecr):
    ecr.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH", "REPLICATION"],
                                            imageTagMutability="IMMUTABLE")
    assert ecr.create_repository(repositoryName="plain")["repository"]["imageTagMutability"] == "MUTABLE"
