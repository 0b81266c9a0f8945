"""The wire protocol as raw clients see it: targets, bodies, signatures, errors, model coverage."""

from __future__ import annotations

import json

import pytest
import requests

from ecr_emulator.api.operations import load_all
from ecr_emulator.api.protocol import service_model
from ecr_emulator.core.errors import all_error_classes

PREFIX = "AmazonEC2ContainerRegistry_V20150921."
AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/ecr/aws4_request, "
        "SignedHeaders=host;x-amz-date;x-amz-target, Signature=" + "0" * 64)


def call(server, target: str | None, body: bytes | str = b"{}", auth: str | None = AUTH) -> requests.Response:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    if auth is not None:
        headers["Authorization"] = auth
    return requests.post(server.api_url + "/", data=body, headers=headers, timeout=30)


def test_error_body_shape_and_status(server):
    r = call(server, PREFIX + "DescribeRepositories", json.dumps({"repositoryNames": ["missing"]}))
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert r.json() == {
        "__type": "RepositoryNotFoundException",
        "message": "The repository with name 'missing' does not exist in the registry with id '123456789012'",
    }


def test_unknown_target_and_operation(server):
    assert call(server, "Nope.Describe").json()["__type"] == "UnknownOperationException"
    assert call(server, PREFIX + "MakeCoffee").json()["__type"] == "UnknownOperationException"
    assert call(server, None).json()["__type"] == "UnknownOperationException"


@pytest.mark.parametrize("body", [b"{not json", b"[1,2]", b"\xff\xfe", b'"text"'])
def test_malformed_body_is_serialization_exception(server, body):
    r = call(server, PREFIX + "DescribeRepositories", body)
    assert r.status_code == 400
    assert r.json()["__type"] == "SerializationException"


def test_wrong_types_are_serialization_exception(server):
    for body in ({"repositoryName": 5}, {"repositoryName": "ok-name", "imageTagMutability": ["MUTABLE"]},
                 {"repositoryName": "ok-name", "imageScanningConfiguration": {"scanOnPush": "yes"}}):
        r = call(server, PREFIX + "CreateRepository", json.dumps(body))
        assert r.status_code == 400 and r.json()["__type"] == "SerializationException", (body, r.text)


def test_constraints_raw_clients_can_break(server):
    cases = [
        ("CreateRepository", {}, "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
                                 "'Member must not be null'"),
        ("CreateRepository", {"repositoryName": "a"}, "Invalid parameter at 'repositoryName' failed to satisfy "
                                                      "constraint: 'must have length greater than or equal to 2'"),
        ("DescribeImages", {"repositoryName": "ab", "maxResults": 0},
         "Invalid parameter at 'maxResults' failed to satisfy constraint: "
         "'Member must have value greater than or equal to 1'"),
        ("BatchGetImage", {"repositoryName": "ab", "imageIds": []},
         "Invalid parameter at 'imageIds' failed to satisfy constraint: 'must have length greater than or equal to 1'"),
        ("DescribeRepositories", {"registryId": "12345"},
         "Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{12}''"),
        ("BatchGetImage", {"repositoryName": "ab", "imageIds": [{"imageTag": ""}]},
         "Invalid parameter at 'imageIds.1.member.imageTag' failed to satisfy constraint: "
         "'must have length greater than or equal to 1'"),
    ]
    for op, body, message in cases:
        r = call(server, PREFIX + op, json.dumps(body))
        assert r.status_code == 400
        assert r.json() == {"__type": "InvalidParameterException", "message": message}, (op, body)


def test_missing_signature(server):
    r = call(server, PREFIX + "DescribeRepositories", auth=None)
    assert r.status_code == 403
    assert r.json()["__type"] == "MissingAuthenticationTokenException"


def test_an_operation_not_built_answers_a_typed_501_naming_itself(monkeypatch):
    """Every model operation is built today; one a newer model adds would be missing. Withdraw one
    from the table in an in-process server: whatever the input, the answer is the same typed 501."""
    from ecr_emulator import testing
    from ecr_emulator.api.operations import OPERATIONS

    load_all()
    assert not [n for n in service_model().operation_names if n not in OPERATIONS]
    monkeypatch.delitem(OPERATIONS, "DescribeRegistry")
    with testing.server(job_workers=0) as ecr:
        for body in (b"{}", b'{"repositoryName": 5}'):
            r = requests.post(ecr.api_url + "/", data=body, timeout=30, headers={
                "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": PREFIX + "DescribeRegistry",
                "Authorization": AUTH})
            assert r.status_code == 501, r.text
            assert r.json()["__type"] == "NotImplementedException"
            assert "'DescribeRegistry'" in r.json()["message"]
        coverage = requests.get(ecr.api_url + "/_emulator/coverage", timeout=30).json()
        assert coverage["missingOperations"] == ["DescribeRegistry"]

def test_coverage_is_computed_from_the_model(server):
    body = server.control("coverage")
    model_ops = set(service_model().operation_names)
    assert body["total"] == len(model_ops)
    assert set(body["implementedOperations"]) | set(body["missingOperations"]) == model_ops
    assert body["implemented"] == len(body["implementedOperations"])
    print(f"\nECR API coverage: {body['implemented']}/{body['total']} operations")


def test_every_modelled_error_has_a_class_with_the_same_name():
    model = service_model()
    names = {n for n in model.shape_names if model.shape_for(n).metadata.get("exception")}
    classes = all_error_classes()
    # errors of features not built yet may be missing; every class we have must be a model name
    # or one of the documented protocol errors.
    protocol = {"SerializationException", "UnknownOperationException", "MissingAuthenticationTokenException",
                "NotImplementedException", "AccessDeniedException", "BlobUnknown", "ImageReferencedByIndex",
                "IncompleteSignatureException", "InvalidSignatureException", "UnrecognizedClientException",
                "RequestTooLarge", "StorageFullException", "UpstreamImageFailure"}
    assert set(classes) - names <= protocol


def test_timestamps_are_epoch_numbers_and_nulls_omitted(server, ecr):
    ecr.create_repository(repositoryName="shape")
    r = call(server, PREFIX + "DescribeRepositories", b"{}")
    repo = r.json()["repositories"][0]
    assert isinstance(repo["createdAt"], float | int)
    assert "imageTagMutabilityExclusionFilters" not in repo
    assert "nextToken" not in r.json()


def test_environment_endpoint_variable_works(server, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", server.api_url)
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    client.create_repository(repositoryName="via-env")
    assert client.describe_repositories()["repositories"][0]["repositoryName"] == "via-env"
