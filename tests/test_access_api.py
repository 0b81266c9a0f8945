"""Access control on the ECR API, as boto3 and the aws CLI meet it: declared principals in three
accounts, identity policies, repository and registry policies, conditions (server with --iam-config)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.errors import error_of
from tests.iam_world import (
    ADMIN_KEY,
    CI,
    DEPLOYER,
    NETWORK,
    NOBODY,
    NOT_DELETE,
    PULL,
    PULLER,
    READER,
    TAGGER,
    A,
    B,
    C,
    aws_cli,
    client,
    denial,
    doc,
    repo_arn,
    start_iam_server,
)
from tests.images import build_image, push_via_api


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_iam_server(tmp_path_factory, "iam-api")
    yield live
    live.stop()


@pytest.fixture
def admin(server):
    """The root of account A: an access key nobody declared, mapped to the default account."""
    return client(server, ADMIN_KEY)


def denied(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as e:
        call(*args, **kwargs)
    code, message = error_of(e)
    assert code == "AccessDeniedException", message
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return message


def grant_pull(admin, repo: str, principal, **extra) -> None:
    statement = {"Sid": "Pull", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": PULL, **extra}
    admin.set_repository_policy(repositoryName=repo, policyText=json.dumps(doc(statement)))


def test_undeclared_keys_keep_acting_as_their_account_root(server, admin):
    admin.create_repository(repositoryName="app")
    assert admin.describe_repositories()["repositories"][0]["registryId"] == A
    other = client(server, C)  # a 12-digit key is that account's root
    assert other.create_repository(repositoryName="app")["repository"]["registryId"] == C
    message = denied(other.describe_images, registryId=A, repositoryName="app")
    assert message == denial(f"arn:aws:iam::{C}:root", "ecr:DescribeImages", repo_arn("app"), "resource")


def test_same_account_user_without_permission_is_denied_and_nothing_changes(server, admin):
    admin.create_repository(repositoryName="app")
    reader = client(server, READER)
    message = denied(reader.describe_repositories)
    assert message == denial(READER.arn, "ecr:DescribeRepositories", f"arn:aws:ecr:us-east-1:{A}:repository/*",
                             "identity")
    denied(reader.delete_repository, repositoryName="app")
    assert admin.describe_repositories(repositoryNames=["app"])["repositories"]
    denied(reader.get_authorization_token)


def test_identity_policy_allows_wildcard_actions_and_denies_explicitly(server, admin):
    ci = client(server, CI)
    ci.create_repository(repositoryName="app-web")
    push_via_api(ci, "app-web", build_image(), "v1")
    assert [i["imageTag"] for i in ci.list_images(repositoryName="app-web")["imageIds"]] == ["v1"]
    assert ci.get_authorization_token()["authorizationData"]
    assert denied(ci.delete_repository, repositoryName="app-web", force=True) == denial(
        CI.arn, "ecr:DeleteRepository", repo_arn("app-web"), "explicit-identity")
    admin.create_repository(repositoryName="elsewhere")
    denied(ci.describe_images, repositoryName="elsewhere")
    denied(ci.put_lifecycle_policy, repositoryName="app-web", lifecyclePolicyText="{" + " " * 100 + "}")  # not among its actions


def test_not_action(server, admin):
    careful = client(server, NOT_DELETE)
    careful.create_repository(repositoryName="kept")
    push_via_api(careful, "kept", build_image(), "v1")
    denied(careful.batch_delete_image, repositoryName="kept", imageIds=[{"imageTag": "v1"}])
    denied(careful.delete_repository, repositoryName="kept", force=True)
    assert careful.describe_images(repositoryName="kept")["imageDetails"][0]["imageTags"] == ["v1"]


def test_cross_account_pull_needs_the_repository_policy_and_the_callers_identity(server, admin):
    admin.create_repository(repositoryName="shared")
    image = build_image()
    push_via_api(admin, "shared", image, "v1")
    puller, nobody = client(server, PULLER), client(server, NOBODY)
    assert denied(puller.batch_get_image, registryId=A, repositoryName="shared", imageIds=[{"imageTag": "v1"}]) == \
        denial(PULLER.arn, "ecr:BatchGetImage", repo_arn("shared"), "resource")
    grant_pull(admin, "shared", B)
    got = puller.batch_get_image(registryId=A, repositoryName="shared", imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageId"]["imageDigest"] == image.digest
    url = puller.get_download_url_for_layer(registryId=A, repositoryName="shared",
                                            layerDigest=image.layers[0].digest)["downloadUrl"]
    assert url
    # the caller's own identity policy must allow it too
    assert denied(nobody.batch_get_image, registryId=A, repositoryName="shared", imageIds=[{"imageTag": "v1"}]) == \
        denial(NOBODY.arn, "ecr:BatchGetImage", repo_arn("shared"), "identity")
    # the grant names B: account C's root is still refused; B may not push
    denied(client(server, C).batch_get_image, registryId=A, repositoryName="shared", imageIds=[{"imageTag": "v1"}])
    denied(puller.put_image, registryId=A, repositoryName="shared", imageManifest=image.manifest.decode(),
           imageTag="theirs")
    assert [i["imageTag"] for i in admin.list_images(repositoryName="shared")["imageIds"]] == ["v1"]


def test_resource_policy_conditions_on_principal_arn_and_not_principal(server, admin):
    admin.create_repository(repositoryName="cond")
    push_via_api(admin, "cond", build_image(), "v1")
    grant_pull(admin, "cond", B, Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{B}:user/pull*"}})
    assert client(server, PULLER).batch_get_image(registryId=A, repositoryName="cond",
                                                  imageIds=[{"imageTag": "v1"}])["images"]
    deployer = client(server, DEPLOYER)
    message = denied(deployer.batch_get_image, registryId=A, repositoryName="cond", imageIds=[{"imageTag": "v1"}])
    assert message.startswith(f"User: arn:aws:sts::{B}:assumed-role/deploy/pipeline is not authorized")
    fence = doc(
        {"Effect": "Allow", "Principal": {"AWS": [B]}, "Action": "ecr:*"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": [f"arn:aws:iam::{A}:root", DEPLOYER.arn]}, "Action": "ecr:*"},
    )
    admin.set_repository_policy(repositoryName="cond", policyText=json.dumps(fence))
    assert deployer.describe_images(registryId=A, repositoryName="cond")["imageDetails"]
    assert denied(client(server, PULLER).describe_images, registryId=A, repositoryName="cond") == denial(
        PULLER.arn, "ecr:DescribeImages", repo_arn("cond"), "explicit-resource")


def test_request_tags_resource_tags_and_tag_keys(server, admin):
    tagger = client(server, TAGGER)
    denied(tagger.create_repository, repositoryName="untagged")
    denied(tagger.create_repository, repositoryName="wrong-team", tags=[{"Key": "team", "Value": "web"}])
    denied(tagger.create_repository, repositoryName="extra-key",
           tags=[{"Key": "team", "Value": "build"}, {"Key": "cost", "Value": "1"}])
    created = tagger.create_repository(repositoryName="dev-app", tags=[{"Key": "team", "Value": "build"},
                                                                       {"Key": "env", "Value": "dev"}])
    arn = created["repository"]["repositoryArn"]
    assert tagger.describe_images(repositoryName="dev-app")["imageDetails"] == []
    admin.create_repository(repositoryName="prod-app", tags=[{"Key": "env", "Value": "prod"}])
    denied(tagger.describe_images, repositoryName="prod-app")
    denied(tagger.tag_resource, resourceArn=arn, tags=[{"Key": "owner", "Value": "x"}])
    tagger.tag_resource(resourceArn=arn, tags=[{"Key": "team", "Value": "build"}])
    # resource tags are read at request time: retagging the repository changes the answer at once
    admin.tag_resource(resourceArn=repo_arn("prod-app"), tags=[{"Key": "env", "Value": "dev"}])
    assert tagger.list_images(repositoryName="prod-app")["imageIds"] == []
    # ...IfExists: no owner tag passes, a foreign owner does not
    assert tagger.list_tags_for_resource(resourceArn=arn)["tags"]
    admin.tag_resource(resourceArn=arn, tags=[{"Key": "owner", "Value": "someone-else"}])
    denied(tagger.list_tags_for_resource, resourceArn=arn)


def test_source_ip_date_numeric_bool_and_null_conditions(server, admin):
    admin.create_repository(repositoryName="net")
    push_via_api(admin, "net", build_image(), "v1")
    admin.set_repository_policy(repositoryName="net", policyText=json.dumps(doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"}, "Action": "ecr:ListImages"})))
    net = client(server, NETWORK)
    assert net.describe_repositories()["repositories"]  # from 127.0.0.1
    denied(net.describe_images, repositoryName="net")  # only from 10.0.0.0/8
    assert net.list_images(repositoryName="net")["imageIds"]  # aws:username present, EpochTime before 2100
    assert net.get_repository_policy(repositoryName="net")["policyText"]
    assert denied(net.batch_get_image, repositoryName="net", imageIds=[{"imageTag": "v1"}]) == denial(
        NETWORK.arn, "ecr:BatchGetImage", repo_arn("net"), "explicit-identity")  # plain HTTP: SecureTransport false
    server.control("clock", {"set": 4102444800 + 60})  # 2100-01-01T00:01:00Z on the emulator clock
    denied(net.get_repository_policy, repositoryName="net")
    denied(net.list_images, repositoryName="net")


def test_registry_policy_v2_applies_to_every_request_and_v1_only_to_three_actions(server, admin):
    admin.create_repository(repositoryName="reg")
    push_via_api(admin, "reg", build_image(), "v1")
    puller = client(server, PULLER)
    denied(puller.describe_images, registryId=A, repositoryName="reg")
    policy = doc({"Sid": "B", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"},
                  "Action": ["ecr:DescribeImages", "ecr:CreateRepository"], "Resource": repo_arn("*")})
    admin.put_registry_policy(policyText=json.dumps(policy))
    assert puller.describe_images(registryId=A, repositoryName="reg")["imageDetails"]
    admin.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    denied(puller.describe_images, registryId=A, repositoryName="reg")
    created = puller.create_repository(registryId=A, repositoryName="made-by-b")["repository"]
    assert created["registryId"] == A
    with pytest.raises(ClientError) as e:
        admin.put_registry_policy(policyText=json.dumps(doc({**policy["Statement"][0], "Action": "ecr:*"})))
    assert error_of(e) == ("InvalidParameterException", "Invalid parameter at 'PolicyText' failed to satisfy "
                                                          "constraint: 'Invalid registry policy provided'")
    admin.put_registry_policy(policyText=json.dumps(doc({**policy["Statement"][0], "Action": "ecr:ReplicateImage"})))


def test_get_authorization_token_is_judged_by_identity_policy_alone(server, admin):
    admin.put_registry_policy(policyText=json.dumps(doc({
        "Effect": "Allow", "Principal": {"AWS": A}, "Action": "ecr:*", "Resource": "*"})))
    assert denied(client(server, READER).get_authorization_token) == denial(
        READER.arn, "ecr:GetAuthorizationToken", "*", "identity")
    assert client(server, NOBODY).get_authorization_token()["authorizationData"]


def test_set_repository_policy_force_guards_against_locking_yourself_out(server, admin):
    admin.create_repository(repositoryName="locked")
    lockout = doc({"Effect": "Deny", "Principal": "*", "Action": "ecr:SetRepositoryPolicy"})
    with pytest.raises(ClientError) as e:
        admin.set_repository_policy(repositoryName="locked", policyText=json.dumps(lockout))
    code, message = error_of(e)
    assert code == "InvalidParameterException" and "Set force to true" in message
    with pytest.raises(ClientError):
        admin.get_repository_policy(repositoryName="locked")  # nothing was stored
    admin.set_repository_policy(repositoryName="locked", policyText=json.dumps(lockout), force=True)
    denied(admin.set_repository_policy, repositoryName="locked", policyText=json.dumps(lockout), force=True)
    assert admin.delete_repository_policy(repositoryName="locked")["policyText"]


def test_policies_with_unknown_operators_or_keys_are_refused(server, admin):
    admin.create_repository(repositoryName="strict")
    for condition in ({"StringEqualz": {"aws:username": "x"}}, {"StringEquals": {"aws:Nope": "x"}},
                      {"IpAddress": {"aws:SourceIp": "not-an-ip"}}):
        bad = doc({"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Condition": condition})
        with pytest.raises(ClientError) as e:
            admin.set_repository_policy(repositoryName="strict", policyText=json.dumps(bad))
        assert error_of(e)[0] == "InvalidParameterException"
        with pytest.raises(ClientError) as e:
            admin.put_registry_policy(policyText=json.dumps(bad))
        assert error_of(e)[0] == "InvalidParameterException"
    huge = doc(*[{"Sid": f"S{i}", "Effect": "Allow", "Principal": {"AWS": B}, "Action": "ecr:BatchGetImage"}
                 for i in range(200)])
    with pytest.raises(ClientError) as e:
        admin.set_repository_policy(repositoryName="strict", policyText=json.dumps(huge))
    assert error_of(e)[0] == "InvalidParameterException" and "10240" in error_of(e)[1]


def test_aws_cli_cross_account(server, admin):
    admin.create_repository(repositoryName="cli")
    push_via_api(admin, "cli", build_image(), "v1")
    refused = aws_cli(server, PULLER, "ecr", "describe-images", "--registry-id", A, "--repository-name", "cli")
    assert refused.returncode != 0
    assert "AccessDeniedException" in refused.stderr and PULLER.arn in refused.stderr
    grant_pull(admin, "cli", PULLER.arn)
    ok = aws_cli(server, PULLER, "ecr", "batch-get-image", "--registry-id", A, "--repository-name", "cli",
                 "--image-ids", "imageTag=v1")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["images"][0]["registryId"] == A
    password = aws_cli(server, PULLER, "ecr", "get-login-password")
    assert password.returncode == 0 and password.stdout.strip()
