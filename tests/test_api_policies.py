"""Repository and registry policies: validation, storage, ECR's re-serialised text."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from ecr_emulator.core.policies import pretty
from tests.errors import error_of

PULL = {
    "Version": "2008-10-17",
    "Statement": [{
        "Sid": "AllowPull",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:role/puller"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    }],
}


def test_pretty_matches_ecr_cli_example():
    # the AWS CLI example output of get-repository-policy
    expected = (
        '{\n  "Version" : "2008-10-17",\n  "Statement" : [ {\n    "Sid" : "AllowPull",\n    "Effect" : "Allow",\n'
        '    "Principal" : {\n      "AWS" : "arn:aws:iam::123456789012:role/puller"\n    },\n'
        '    "Action" : [ "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer" ]\n  } ]\n}'
    )
    assert pretty(PULL) == expected


def test_repository_policy_roundtrip(ecr):
    ecr.create_repository(repositoryName="pol")
    with pytest.raises(ClientError) as e:
        ecr.get_repository_policy(repositoryName="pol")
    assert error_of(e) == (
        "RepositoryPolicyNotFoundException",
        "Repository policy does not exist for the repository with name 'pol' in the registry with id '123456789012'",
    )
    out = ecr.set_repository_policy(repositoryName="pol", policyText=json.dumps(PULL))
    assert json.loads(out["policyText"]) == PULL and out["policyText"] == pretty(PULL)
    assert ecr.get_repository_policy(repositoryName="pol")["policyText"] == pretty(PULL)
    assert ecr.delete_repository_policy(repositoryName="pol")["policyText"] == pretty(PULL)
    with pytest.raises(ClientError) as e:
        ecr.delete_repository_policy(repositoryName="pol")
    assert error_of(e)[0] == "RepositoryPolicyNotFoundException"


@pytest.mark.parametrize("doc", [
    "not json",
    json.dumps({"Version": "2012-10-17"}),
    json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}),
    json.dumps({"Version": "1999-01-01", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*"}]}),
    json.dumps({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "ecr:*"}]}),
    json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}]}),
])
def test_invalid_repository_policies(ecr, doc):
    ecr.create_repository(repositoryName="pol")
    with pytest.raises(ClientError) as e:
        ecr.set_repository_policy(repositoryName="pol", policyText=doc)
    assert error_of(e) == (
        "InvalidParameterException",
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'",
    )


def test_registry_policy(ecr):
    with pytest.raises(ClientError) as e:
        ecr.get_registry_policy()
    assert error_of(e)[0] == "RegistryPolicyNotFoundException"
    doc = {"Version": "2012-10-17", "Statement": [{"Sid": "Rep", "Effect": "Allow",
           "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
           "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
           "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/*"}]}
    assert json.loads(ecr.put_registry_policy(policyText=json.dumps(doc))["policyText"]) == doc
    assert json.loads(ecr.get_registry_policy()["policyText"]) == doc
    assert json.loads(ecr.delete_registry_policy()["policyText"]) == doc
    with pytest.raises(ClientError) as e:
        ecr.delete_registry_policy()
    assert error_of(e)[0] == "RegistryPolicyNotFoundException"
    with pytest.raises(ClientError) as e:
        ecr.put_registry_policy(policyText="{}")
    assert error_of(e)[1].endswith("'Invalid registry policy provided'")


def test_account_settings(ecr):
    out = ecr.get_account_setting(name="BLOB_MOUNTING")
    assert (out["name"], out["value"]) == ("BLOB_MOUNTING", "DISABLED")
    assert ecr.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V2"
    assert ecr.get_account_setting(name="BASIC_SCAN_TYPE_VERSION")["value"] == "AWS_NATIVE"
    assert ecr.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")["value"] == "ENABLED"
    assert ecr.get_account_setting(name="BLOB_MOUNTING")["value"] == "ENABLED"
    with pytest.raises(ClientError) as e:
        ecr.put_account_setting(name="BLOB_MOUNTING", value="MAYBE")
    assert error_of(e)[0] == "ValidationException"
    with pytest.raises(ClientError) as e:
        ecr.get_account_setting(name="NOT_A_SETTING")
    assert error_of(e)[0] == "ValidationException"
