"""SigV4 verification (serve --iam-config --verify-signatures): botocore's signer, the aws CLI, a
presigned URL fetched with a plain HTTP client, the emulator clock's 15-minute window, garbled
headers and odd credentials getting AWS-shaped 4xx; and a bad --iam-config stopping serve."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests
from botocore.exceptions import ClientError

from tests.errors import error_of
from tests.iam_world import CI, DEPLOYER, ROOT_A, A, aws_cli, client, start_iam_server

MISMATCH = ("The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            "Access Key and signing method. Consult the service documentation for details.")
INVALID_TOKEN = "The security token included in the request is invalid."
TARGET = "AmazonEC2ContainerRegistry_V20150921."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_iam_server(tmp_path_factory, "iam-sigv4", "--verify-signatures")
    yield live
    live.stop()


def refused(call, *args, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as e:
        call(*args, **kwargs)
    return (*error_of(e), e.value.response["ResponseMetadata"]["HTTPStatusCode"])


def raw(server, authorization: str | bytes, dated: bool = True) -> requests.Response:
    headers = {"X-Amz-Target": TARGET + "DescribeRepositories", "Content-Type": "application/x-amz-json-1.1",
               "Authorization": authorization}
    if dated:
        headers["X-Amz-Date"] = "20260101T000000Z"
    return requests.post(server.api_url + "/", data=b"{}", timeout=30, headers=headers)


def test_botocore_signatures_verify_and_a_wrong_secret_does_not(server):
    assert client(server, CI).get_authorization_token()["authorizationData"]
    assert client(server, ROOT_A).create_repository(repositoryName="signed")["repository"]["registryId"] == A
    assert refused(client(server, CI, secret="not-the-secret").get_authorization_token) == (
        "InvalidSignatureException", MISMATCH, 403)
    assert refused(client(server, CI, secret="sécret-non-ascii").get_authorization_token)[0] == \
        "InvalidSignatureException"


def test_unknown_keys_and_session_tokens_are_unrecognized(server):
    assert refused(client(server, "AKIANOBODYDECLARED01").describe_repositories) == (
        "UnrecognizedClientException", INVALID_TOKEN, 400)
    assert refused(client(server, "123456789012").describe_repositories)[0] == "UnrecognizedClientException"
    assert client(server, DEPLOYER).describe_repositories()["repositories"] == []  # role with its session token
    assert refused(client(server, DEPLOYER, token="").describe_repositories)[0] == "UnrecognizedClientException"
    assert refused(client(server, DEPLOYER, token="stolen").describe_repositories)[0] == "UnrecognizedClientException"
    assert refused(client(server, CI, token="unexpected").describe_repositories)[0] == "UnrecognizedClientException"


def test_the_emulator_clock_bounds_the_signature_date(server):
    ci = client(server, CI)
    server.control("clock", {"advance": 14 * 60})
    assert ci.get_authorization_token()["authorizationData"]
    server.control("clock", {"advance": 2 * 60})
    code, message, status = refused(ci.get_authorization_token)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("Signature expired: ") and message.endswith(" - 15 min.)")
    server.control("clock", {"advance": -32 * 60})
    code, message, _ = refused(ci.get_authorization_token)
    assert code == "InvalidSignatureException" and message.startswith("Signature not yet current: ")


def test_aws_cli_signs_and_verifies(server):
    ok = aws_cli(server, ROOT_A, "ecr", "describe-repositories")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["repositories"] == []
    password = aws_cli(server, CI, "ecr", "get-login-password")
    assert password.returncode == 0 and password.stdout.strip()
    r = requests.get(f"{server.registry_url}/v2/", auth=("AWS", password.stdout.strip()), timeout=10)
    assert r.status_code == 200
    bad = aws_cli(server, CI, "ecr", "get-login-password", secret="wrong")
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr


def test_a_presigned_url_works_with_a_plain_http_client_until_it_expires(server):
    ci = client(server, CI)
    url = ci.generate_presigned_url("get_authorization_token", ExpiresIn=120)
    assert "X-Amz-Signature=" in url and "Authorization" not in url
    headers = {"X-Amz-Target": TARGET + "GetAuthorizationToken", "Content-Type": "application/x-amz-json-1.1"}
    r = requests.post(url, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["authorizationData"][0]["authorizationToken"]
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    assert requests.post(tampered, headers=headers, timeout=30).json() == {
        "__type": "InvalidSignatureException", "message": MISMATCH}
    wrong_op = requests.post(url, headers={**headers, "X-Amz-Target": TARGET + "DeleteRepository"}, timeout=30)
    assert wrong_op.status_code == 403  # the operation is a signed header
    server.control("clock", {"advance": 121})
    expired = requests.post(url, headers=headers, timeout=30)
    assert expired.status_code == 403 and expired.json()["message"].startswith("Signature expired: ")


@pytest.mark.parametrize("authorization,needle", [
    ("AWS4-HMAC-SHA256 Credential", "'Credential' not a valid key=value pair (missing equal-sign) in Authorization"),
    ("Bearer abc.def", "Authorization header requires 'Credential' parameter."),
    ("AWS4-HMAC-SHA256 Credential=AKIAACCOUNTACIUSER01/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host",
     "Authorization header requires 'Signature' parameter."),
    ("AWS4-HMAC-SHA256 Credential=AKIA/us-east-1, SignedHeaders=host, Signature=00",
     "Credential must have exactly 5 slash-delimited elements"),
    ("AWS4-HMAC-SHA256 Credential=AKIAACCOUNTACIUSER01/20260101/us-east-1/ecr/aws4_request, SignedHeaders=host, "
     "Signature=00", "requires existence of either a 'X-Amz-Date' or a 'Date' header"),
])
def test_garbled_authorization_headers_are_incomplete_signatures(server, authorization, needle):
    r = raw(server, authorization, dated="X-Amz-Date" not in needle)
    assert r.status_code == 400 and r.json()["__type"] == "IncompleteSignatureException", r.text
    assert needle in r.json()["message"]


def test_non_ascii_keys_and_impossible_regions(server):
    r = raw(server, "AWS4-HMAC-SHA256 Credential=AKIAÉÉÉÉ/20260101/us-east-1/ecr/aws4_request, "
                    "SignedHeaders=host, Signature=00".encode("latin-1"))
    assert r.status_code == 400 and r.json() == {"__type": "UnrecognizedClientException", "message": INVALID_TOKEN}
    code, message, status = refused(client(server, CI, region="moon-base-1").describe_repositories)
    assert (code, message, status) == ("InvalidSignatureException", "Credential should be scoped to a valid region. ",
                                       403)
    r = raw(server, f"AWS4-HMAC-SHA256 Credential={CI.key}/20260101/{'x' * 300}/ecr/aws4_request, "
                    "SignedHeaders=host, Signature=00")
    assert r.status_code == 403 and r.json()["__type"] == "InvalidSignatureException"
    assert "Traceback" not in server.test_log(), server.test_log()[-4000:]


def serve(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecr_emulator", "serve", "--api-port", "0", "--registry-port", "0",
                           "--data-dir", str(tmp_path / "data"), *args], capture_output=True, text=True, timeout=60)


def test_a_malformed_iam_config_stops_serve_naming_the_file_and_the_entry(tmp_path):
    bad = tmp_path / "iam.json"
    bad.write_text(json.dumps({"principals": [
        {"accessKeyId": "AKIAGOODGOODGOOD0001", "secretAccessKey": "s", "arn": "arn:aws:iam::111111111111:user/a"},
        {"accessKeyId": "AKIABADBADBADBAD0002", "secretAccessKey": "s", "arn": "arn:aws:iam::111111111111:user/b",
         "policies": [{"Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*",
                                      "Condition": {"StringEqualz": {"aws:username": "b"}}}]}]},
    ]}))
    proc = serve(tmp_path, "--iam-config", str(bad))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(bad) in lines[0] and "principals[1] (AKIABADBADBADBAD0002)" in lines[0]
    assert "unknown condition operator 'StringEqualz'" in lines[0]
    missing = serve(tmp_path, "--iam-config", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json: cannot be read" in missing.stderr
    unverifiable = serve(tmp_path, "--verify-signatures")
    assert unverifiable.returncode == 2 and "--verify-signatures needs --iam-config" in unverifiable.stderr
