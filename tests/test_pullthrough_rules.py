"""Pull through cache rules through boto3 and the aws CLI: ECR's validation, errors and limits,
secrets from --secrets-file, and ValidatePullThroughCacheRule contacting real upstreams."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from tests import pullthrough_world
from tests.pullthrough_world import ACCOUNT, HUB_SECRET, OTHER_SECRET, REGION
from tests.server import make_client


@pytest.fixture
def world(ptc_world):
    return ptc_world


@pytest.fixture
def ecr(world):
    world.reset()
    return world.client()


def error(exc: pytest.ExceptionInfo) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def test_create_describe_update_delete(ecr):
    created = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    assert created["ecrRepositoryPrefix"] == "quay" and created["upstreamRegistryUrl"] == "quay.io"
    assert created["upstreamRegistry"] == "quay" and created["registryId"] == ACCOUNT
    assert created["upstreamRepositoryPrefix"] == "ROOT" and "credentialArn" not in created
    hub = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io",
                                             upstreamRegistry="docker-hub", credentialArn=HUB_SECRET)
    assert hub["credentialArn"] == HUB_SECRET
    rules = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in rules] == ["docker-hub", "quay"]
    assert rules[0]["upstreamRegistry"] == "docker-hub" and rules[0]["credentialArn"] == HUB_SECRET
    assert rules[0]["createdAt"] == rules[0]["updatedAt"]
    one = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["quay"])["pullThroughCacheRules"]
    assert [r["upstreamRegistryUrl"] for r in one] == ["quay.io"]
    page = ecr.describe_pull_through_cache_rules(maxResults=1)
    assert len(page["pullThroughCacheRules"]) == 1 and page["nextToken"]
    rest = ecr.describe_pull_through_cache_rules(maxResults=1, nextToken=page["nextToken"])
    assert [r["ecrRepositoryPrefix"] for r in rest["pullThroughCacheRules"]] == ["quay"] and "nextToken" not in rest
    deleted = ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="quay")
    assert deleted["upstreamRegistryUrl"] == "quay.io" and deleted["ecrRepositoryPrefix"] == "quay"
    with pytest.raises(ClientError) as exc:
        ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="quay")
    assert error(exc)[0] == "PullThroughCacheRuleNotFoundException"
    with pytest.raises(ClientError) as exc:
        ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["docker-hub", "quay"])
    assert error(exc)[0] == "PullThroughCacheRuleNotFoundException" and "'quay'" in error(exc)[1]


def test_update_changes_credentials_only(ecr, world):
    world.write_secrets({HUB_SECRET: {"username": "u", "accessToken": "t"},
                         OTHER_SECRET: json.dumps({"username": "v", "accessToken": "w"})})  # SecretString form
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="hub", upstreamRegistryUrl="registry-1.docker.io",
                                       credentialArn=HUB_SECRET)
    out = ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="hub", credentialArn=OTHER_SECRET)
    assert out["credentialArn"] == OTHER_SECRET and out["ecrRepositoryPrefix"] == "hub"
    rule = ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"][0]
    assert rule["credentialArn"] == OTHER_SECRET and rule["updatedAt"] >= rule["createdAt"]
    assert rule["upstreamRegistryUrl"] == "registry-1.docker.io"
    with pytest.raises(ClientError) as exc:
        ecr.update_pull_through_cache_rule(ecrRepositoryPrefix="nope", credentialArn=HUB_SECRET)
    assert error(exc)[0] == "PullThroughCacheRuleNotFoundException"


@pytest.mark.parametrize("kwargs, code, words", [
    ({"upstreamRegistryUrl": "registry.example.com"}, "UnsupportedUpstreamRegistryException", "not supported"),
    ({"upstreamRegistryUrl": "https://quay.io"}, "UnsupportedUpstreamRegistryException", "not supported"),
    ({"upstreamRegistryUrl": "quay.io", "upstreamRegistry": "k8s"}, "UnsupportedUpstreamRegistryException",
     "belongs to upstream registry 'quay'"),
    ({"upstreamRegistryUrl": "registry-1.docker.io"}, "UnsupportedUpstreamRegistryException",
     "The specified upstream registry requires authentication. Specify a valid Secrets Manager ARN"),
    ({"upstreamRegistryUrl": "ghcr.io"}, "UnsupportedUpstreamRegistryException", "requires authentication"),
    ({"upstreamRegistryUrl": "myreg.azurecr.io"}, "UnsupportedUpstreamRegistryException", "requires authentication"),
    ({"upstreamRegistryUrl": "quay.io", "upstreamRegistry": "bogus"}, "InvalidParameterException", "upstreamRegistry"),
    ({"upstreamRegistryUrl": "quay.io", "upstreamRepositoryPrefix": "team"}, "ValidationException",
     "upstreamRepositoryPrefix"),
    ({"upstreamRegistryUrl": "quay.io", "customRoleArn": f"arn:aws:iam::{ACCOUNT}:role/x"}, "ValidationException",
     "customRoleArn"),
    ({"upstreamRegistryUrl": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"}, "ValidationException",
     "requires customRoleArn"),
    ({"upstreamRegistryUrl": f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com",
      "customRoleArn": "arn:aws:iam::210987654321:role/puller"}, "ValidationException", "account of the registry"),
])
def test_create_refusals(ecr, kwargs, code, words):
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="cache", **kwargs)
    assert error(exc)[0] == code and words in error(exc)[1], error(exc)


def test_prefix_rules(ecr):
    with pytest.raises(ClientError) as exc:  # ROOT (cache every repository) is an ECR-to-ECR rule
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ROOT", upstreamRegistryUrl="quay.io")
    assert error(exc)[0] == "ValidationException"
    for bad in ("Upper", "x" * 31, "-lead", "two//slashes"):
        with pytest.raises(ClientError) as exc:
            ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=bad, upstreamRegistryUrl="quay.io")
        assert error(exc)[0] == "InvalidParameterException", bad
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="team/quay/", upstreamRegistryUrl="quay.io")
    with pytest.raises(ClientError) as exc:  # the implied "/" makes these one prefix
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="team/quay", upstreamRegistryUrl="public.ecr.aws")
    assert error(exc)[0] == "PullThroughCacheRuleAlreadyExistsException"
    role = f"arn:aws:iam::{ACCOUNT}:role/ptc-puller"
    url = f"{ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com"
    root = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ROOT", upstreamRegistryUrl=url, customRoleArn=role)
    assert root["upstreamRegistry"] == "ecr" and root["customRoleArn"] == role
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="ROOT")
    with pytest.raises(ClientError) as exc:  # upstreamRepositoryPrefix needs a non-ROOT ECR prefix
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="ROOT", upstreamRegistryUrl=url, customRoleArn=role,
                                           upstreamRepositoryPrefix="team")
    assert error(exc)[0] == "ValidationException"
    mapped = ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="my-app", upstreamRegistryUrl=url,
                                                customRoleArn=role, upstreamRepositoryPrefix="upstream-app")
    assert mapped["upstreamRepositoryPrefix"] == "upstream-app"


def test_fifty_rules_at_most(ecr, world):
    for i in range(50):
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix=f"cache{i}", upstreamRegistryUrl="quay.io")
    with pytest.raises(ClientError) as exc:
        ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="cache50", upstreamRegistryUrl="quay.io")
    assert error(exc)[0] == "LimitExceededException" and "50" in error(exc)[1]
    other_region = make_client(world.server, region="eu-west-1")  # the limit is per registry
    other_region.create_pull_through_cache_rule(ecrRepositoryPrefix="cache50", upstreamRegistryUrl="quay.io")


def test_secret_errors(ecr, world):
    def create(arn: str):  # type: ignore[no-untyped-def]
        return ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="hub", upstreamRegistryUrl="registry-1.docker.io",
                                                  credentialArn=arn)

    with pytest.raises(ClientError) as exc:
        create(OTHER_SECRET)
    assert error(exc)[0] == "SecretNotFoundException" and OTHER_SECRET in error(exc)[1]
    elsewhere = OTHER_SECRET.replace(REGION, "eu-west-1")
    world.write_secrets({elsewhere: {"username": "u", "accessToken": "t"}})
    with pytest.raises(ClientError) as exc:
        create(elsewhere)
    assert error(exc)[0] == "UnableToAccessSecretException"
    world.write_secrets({OTHER_SECRET: "not json at all"})
    with pytest.raises(ClientError) as exc:
        create(OTHER_SECRET)
    assert error(exc)[0] == "UnableToDecryptSecretValueException"
    world.secrets_path.write_text("{broken")
    with pytest.raises(ClientError) as exc:
        create(OTHER_SECRET)
    assert error(exc)[0] == "UnableToAccessSecretException"
    assert ecr.describe_pull_through_cache_rules()["pullThroughCacheRules"] == []


def test_validate_contacts_the_upstream(ecr, world):
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    ok = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="quay")
    assert ok["isValid"] is True and "failure" not in ok and ok["upstreamRegistryUrl"] == "quay.io"
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="hub", upstreamRegistryUrl="registry-1.docker.io",
                                       credentialArn=HUB_SECRET)
    assert ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="hub")["isValid"] is True
    world.write_secrets({HUB_SECRET: {"username": pullthrough_world.HUB_USER, "accessToken": "wrong"}})
    bad = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="hub")
    assert bad["isValid"] is False and "refused the credentials" in bad["failure"]
    world.write_secrets({HUB_SECRET: {"username": pullthrough_world.HUB_USER}})
    bad = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="hub")
    assert bad["isValid"] is False and "'accessToken'" in bad["failure"]
    world.write_secrets({})
    bad = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="hub")
    assert bad["isValid"] is False and bad["failure"].startswith("SecretNotFoundException")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="k8s", upstreamRegistryUrl="registry.k8s.io")
    world.flaky.stop()
    down = ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="k8s")
    assert down["isValid"] is False and "could not be reached" in down["failure"]
    with pytest.raises(ClientError) as exc:
        ecr.validate_pull_through_cache_rule(ecrRepositoryPrefix="nope")
    assert error(exc)[0] == "PullThroughCacheRuleNotFoundException"


def test_aws_cli(world):
    world.reset()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION,
               AWS_PAGER="")

    def aws(*args: str) -> dict:
        proc = subprocess.run(["aws", "ecr", *args, "--endpoint-url", world.server.api_url, "--output", "json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout or "{}")

    out = aws("create-pull-through-cache-rule", "--ecr-repository-prefix", "ecr-public",
              "--upstream-registry-url", "public.ecr.aws")
    assert out["upstreamRegistry"] == "ecr-public"
    rules = aws("describe-pull-through-cache-rules")["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in rules] == ["ecr-public"]
    assert aws("delete-pull-through-cache-rule", "--ecr-repository-prefix", "ecr-public")["ecrRepositoryPrefix"] == \
        "ecr-public"
