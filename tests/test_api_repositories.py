"""Repositories through boto3 against the live server (ECR-BEHAVIOUR section 3)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT
from tests.errors import error_of
from tests.images import build_image, push_via_api


def test_create_returns_ecr_shaped_repository(ecr, server):
    repo = ecr.create_repository(repositoryName="my-app/api")["repository"]
    assert repo["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/my-app/api"
    assert repo["registryId"] == ACCOUNT
    assert repo["repositoryUri"] == f"{server.registry}/my-app/api"
    assert repo["imageTagMutability"] == "MUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": False}
    assert repo["encryptionConfiguration"] == {"encryptionType": "AES256"}
    assert "imageTagMutabilityExclusionFilters" not in repo
    assert repo["createdAt"].year >= 2024


def test_create_with_all_options(ecr):
    repo = ecr.create_repository(
        repositoryName="team/svc",
        tags=[{"Key": "team", "Value": "a"}],
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}],
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "KMS"},
    )["repository"]
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repo["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert repo["encryptionConfiguration"]["kmsKey"].endswith(":alias/aws/ecr")
    tags = ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "a"}]


def test_duplicate_name_is_refused(ecr):
    ecr.create_repository(repositoryName="dup")
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName="dup")
    assert error_of(e) == (
        "RepositoryAlreadyExistsException",
        f"The repository with name 'dup' already exists in the registry with id '{ACCOUNT}'",
    )


@pytest.mark.parametrize(
    "name",
    ["UPPER", "a" * 257, "trailing-", "-leading", "double//slash", "a___b", "x._y", "end/"],
)
def test_bad_names_are_refused(ecr, name):
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName=name)
    code, message = error_of(e)
    assert code == "InvalidParameterException"
    assert message.startswith("Invalid parameter at 'repositoryName' failed to satisfy constraint: '")


@pytest.mark.parametrize("name", ["ab", "a--b", "a__b", "a.b_c-d", "1abc/x9", "a/b/c/d"])
def test_model_pattern_names_are_accepted(ecr, name):
    assert ecr.create_repository(repositoryName=name)["repository"]["repositoryName"] == name


def test_unknown_enum_value_is_refused(ecr):
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName="x1", imageTagMutability="WHATEVER")
    code, message = error_of(e)
    assert code == "InvalidParameterException"
    assert "imageTagMutability" in message and "enum value set" in message


def test_exclusion_filters_rules(ecr):
    with pytest.raises(ClientError) as e:
        ecr.create_repository(repositoryName="x1", imageTagMutability="MUTABLE_WITH_EXCLUSION")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.create_repository(
            repositoryName="x1", imageTagMutability="IMMUTABLE",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "x"}],
        )
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.create_repository(
            repositoryName="x1", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "bad filter!"}],
        )
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:  # more than 5 filters
        ecr.create_repository(
            repositoryName="x1", imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": f"f{i}"} for i in range(6)],
        )
    assert error_of(e)[0] == "InvalidParameterException"
    ecr.describe_repositories()  # nothing half-created
    assert ecr.describe_repositories()["repositories"] == []


def test_describe_by_names_fails_whole_call_on_missing(ecr):
    ecr.create_repository(repositoryName="one")
    with pytest.raises(ClientError) as e:
        ecr.describe_repositories(repositoryNames=["one", "missing"])
    assert error_of(e) == (
        "RepositoryNotFoundException",
        f"The repository with name 'missing' does not exist in the registry with id '{ACCOUNT}'",
    )
    repos = ecr.describe_repositories(repositoryNames=["one"])["repositories"]
    assert [r["repositoryName"] for r in repos] == ["one"]


def test_describe_pagination_default_100_and_paginator(ecr):
    for i in range(105):
        ecr.create_repository(repositoryName=f"repo-{i:03d}")
    first = ecr.describe_repositories()
    assert len(first["repositories"]) == 100
    assert "nextToken" in first
    second = ecr.describe_repositories(nextToken=first["nextToken"])
    assert len(second["repositories"]) == 5
    assert "nextToken" not in second
    names = [
        r["repositoryName"]
        for page in ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 7})
        for r in page["repositories"]
    ]
    assert names == [f"repo-{i:03d}" for i in range(105)]


def test_describe_refuses_bad_token_and_limits(ecr):
    with pytest.raises(ClientError) as e:
        ecr.describe_repositories(nextToken="garbage")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.describe_repositories(maxResults=1001)
    assert error_of(e) == (
        "InvalidParameterException",
        "Invalid parameter at 'maxResults' failed to satisfy constraint: "
        "'Member must have value less than or equal to 1000'",
    )
    with pytest.raises(ClientError) as e:
        ecr.describe_repositories(repositoryNames=["a" + str(i) for i in range(101)])
    assert error_of(e)[0] == "InvalidParameterException"


def test_delete_empty_and_force(ecr):
    ecr.create_repository(repositoryName="gone")
    deleted = ecr.delete_repository(repositoryName="gone")["repository"]
    assert deleted["repositoryName"] == "gone"
    with pytest.raises(ClientError) as e:
        ecr.delete_repository(repositoryName="gone")
    assert error_of(e)[0] == "RepositoryNotFoundException"

    ecr.create_repository(repositoryName="full")
    push_via_api(ecr, "full", build_image(), "v1")
    with pytest.raises(ClientError) as e:
        ecr.delete_repository(repositoryName="full")
    assert error_of(e) == (
        "RepositoryNotEmptyException",
        f"The repository with name 'full' in registry with id '{ACCOUNT}' cannot be deleted because it "
        "still contains images",
    )
    assert ecr.describe_images(repositoryName="full")["imageDetails"]  # untouched
    ecr.delete_repository(repositoryName="full", force=True)
    assert ecr.describe_repositories()["repositories"] == []
    # A new repository of the same name starts empty.
    ecr.create_repository(repositoryName="full")
    assert ecr.describe_images(repositoryName="full")["imageDetails"] == []


@pytest.mark.parametrize("mode", ["MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"])
def test_put_image_tag_mutability_all_modes(ecr, mode):
    ecr.create_repository(repositoryName="mut")
    kwargs = {}
    if mode.endswith("_WITH_EXCLUSION"):
        kwargs["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": "dev-*"}]
    out = ecr.put_image_tag_mutability(repositoryName="mut", imageTagMutability=mode, **kwargs)
    assert out["imageTagMutability"] == mode
    assert out["registryId"] == ACCOUNT and out["repositoryName"] == "mut"
    repo = ecr.describe_repositories(repositoryNames=["mut"])["repositories"][0]
    assert repo["imageTagMutability"] == mode
    assert repo.get("imageTagMutabilityExclusionFilters") == kwargs.get("imageTagMutabilityExclusionFilters")


def test_put_image_scanning_configuration(ecr):
    ecr.create_repository(repositoryName="scan")
    out = ecr.put_image_scanning_configuration(
        repositoryName="scan", imageScanningConfiguration={"scanOnPush": True}
    )
    assert out["imageScanningConfiguration"] == {"scanOnPush": True}
    repo = ecr.describe_repositories(repositoryNames=["scan"])["repositories"][0]
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    with pytest.raises(ClientError) as e:
        ecr.put_image_scanning_configuration(repositoryName="nope", imageScanningConfiguration={"scanOnPush": True})
    assert error_of(e)[0] == "RepositoryNotFoundException"


def test_resource_tags(ecr):
    arn = ecr.create_repository(repositoryName="tagged")["repository"]["repositoryArn"]
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ecr.tag_resource(resourceArn=arn, tags=[{"Key": "a", "Value": "3"}])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "a", "Value": "3"}, {"Key": "b", "Value": "2"}
    ]
    ecr.untag_resource(resourceArn=arn, tagKeys=["a", "never-there"])
    assert ecr.list_tags_for_resource(resourceArn=arn)["tags"] == [{"Key": "b", "Value": "2"}]

    with pytest.raises(ClientError) as e:
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": "k" * 129, "Value": "v"}])
    assert error_of(e)[0] == "InvalidTagParameterException"
    with pytest.raises(ClientError) as e:
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": "aws:reserved", "Value": "v"}])
    assert error_of(e)[0] == "InvalidTagParameterException"
    with pytest.raises(ClientError) as e:
        ecr.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert error_of(e)[0] == "TooManyTagsException"
    assert len(ecr.list_tags_for_resource(resourceArn=arn)["tags"]) == 1  # nothing half-applied
    with pytest.raises(ClientError) as e:
        ecr.list_tags_for_resource(resourceArn="not-an-arn")
    assert error_of(e)[0] == "InvalidParameterException"
    with pytest.raises(ClientError) as e:
        ecr.list_tags_for_resource(resourceArn=arn.replace("tagged", "missing"))
    assert error_of(e)[0] == "RepositoryNotFoundException"
