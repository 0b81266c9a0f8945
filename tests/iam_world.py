"""Three accounts and a cast of declared principals for the access-control tests.

Account A (111111111111) is the server's default registry, so ``localhost:<port>`` is A's registry
and registry clients reach it without DNS; B (222222222222) and C (333333333333) call into it.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

from tests.server import start_server

A, B, C = "111111111111", "222222222222", "333333333333"
REGION = "us-east-1"
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
PUSH = ["ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage",
        "ecr:BatchCheckLayerAvailability"]
LOGIN = {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}


def repo_arn(name: str, account: str = A) -> str:
    return f"arn:aws:ecr:{REGION}:{account}:repository/{name}"


def doc(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


@dataclass(frozen=True)
class Who:
    key: str
    secret: str
    arn: str
    policies: tuple = ()
    token: str | None = None
    session: str | None = None
    tags: dict | None = None

    def entry(self) -> dict:
        out = {"accessKeyId": self.key, "secretAccessKey": self.secret, "arn": self.arn,
               "policies": list(self.policies)}
        if self.token:
            out["sessionToken"] = self.token
        if self.session:
            out["sessionName"] = self.session
        if self.tags:
            out["tags"] = self.tags
        return out


ROOT_A = Who("AKIAACCOUNTAROOT0001", "root-a-secret", f"arn:aws:iam::{A}:root")
CI = Who("AKIAACCOUNTACIUSER01", "ci-secret/+=", f"arn:aws:iam::{A}:user/ci", (doc(
    LOGIN,
    {"Sid": "AppRepos", "Effect": "Allow", "Resource": repo_arn("app*"),
     "Action": [*PULL, *PUSH, "ecr:Describe*", "ecr:List*", "ecr:CreateRepository", "ecr:DeleteRepository"]},
    {"Sid": "NeverDelete", "Effect": "Deny", "Action": "ecr:DeleteRepository", "Resource": "*"},
),), tags={"team": "build"})
READER = Who("AKIAACCOUNTAREADER01", "reader-secret", f"arn:aws:iam::{A}:user/reader")
NOT_DELETE = Who("AKIAACCOUNTANODEL001", "nodelete-secret", f"arn:aws:iam::{A}:user/careful", (doc(
    {"Effect": "Allow", "NotAction": ["ecr:Delete*", "ecr:BatchDeleteImage"], "Resource": "*"},
),))
TAGGER = Who("AKIAACCOUNTATAGGER01", "tagger-secret", f"arn:aws:iam::{A}:user/tagger", (doc(
    {"Sid": "CreateOnlyTagged", "Effect": "Allow", "Action": ["ecr:CreateRepository", "ecr:TagResource"],
     "Resource": "*",
     "Condition": {"StringEquals": {"aws:RequestTag/team": "${aws:PrincipalTag/team}"},
                   "ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}},
    {"Sid": "SeeDev", "Effect": "Allow", "Action": ["ecr:DescribeImages", "ecr:ListImages"], "Resource": "*",
     "Condition": {"StringEquals": {"ecr:ResourceTag/env": "dev"}}},
    {"Sid": "SeeOwn", "Effect": "Allow", "Action": "ecr:ListTagsForResource", "Resource": "*",
     "Condition": {"StringEqualsIfExists": {"aws:ResourceTag/owner": "${aws:username}"}}},
),), tags={"team": "build"})
NETWORK = Who("AKIAACCOUNTANETWORK1", "network-secret", f"arn:aws:iam::{A}:user/network", (doc(
    {"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}},
    {"Effect": "Allow", "Action": "ecr:DescribeImages", "Resource": "*",
     "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
    {"Effect": "Allow", "Action": "ecr:ListImages", "Resource": "*",
     "Condition": {"Null": {"aws:username": "false"}, "NumericLessThan": {"aws:EpochTime": 4102444800}}},
    {"Effect": "Allow", "Action": "ecr:GetRepositoryPolicy", "Resource": "*",
     "Condition": {"DateLessThan": {"aws:CurrentTime": "2100-01-01T00:00:00Z"}}},
    {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    {"Effect": "Allow", "Action": "ecr:BatchGetImage", "Resource": "*"},
),))
PULLER = Who("AKIAACCOUNTBPULLER01", "puller-secret", f"arn:aws:iam::{B}:user/puller", (doc(
    LOGIN,
    {"Effect": "Allow", "Action": [*PULL, "ecr:DescribeImages", "ecr:ListImages", "ecr:DescribeRepositories",
                                   "ecr:CreateRepository", "ecr:PutImage", "ecr:InitiateLayerUpload"],
     "Resource": f"arn:aws:ecr:*:{A}:repository/*"},
),))
NOBODY = Who("AKIAACCOUNTBNOBODY01", "nobody-secret", f"arn:aws:iam::{B}:user/nobody", (doc(LOGIN),))
DEPLOYER = Who("ASIAACCOUNTBDEPLOY01", "deployer-secret", f"arn:aws:iam::{B}:role/ops/deploy", (doc(
    {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"},
),), token="session-token-of-deploy", session="pipeline")
PUSH_ONLY = Who("AKIAACCOUNTAPUSHONLY", "push-only-secret", f"arn:aws:iam::{A}:user/push-only", (doc(
    LOGIN, {"Effect": "Allow", "Action": PUSH, "Resource": "*"},
),))
EVERYONE = (ROOT_A, CI, READER, NOT_DELETE, TAGGER, NETWORK, PULLER, NOBODY, DEPLOYER, PUSH_ONLY)


def write_config(path: Path) -> Path:
    path.write_text(json.dumps({"principals": [w.entry() for w in EVERYONE]}, indent=1))
    return path


ADMIN_KEY = "AKIAUNDECLAREDADMIN1"  # nobody declared it: the root of the default account, A


def start_iam_server(tmp_path_factory, name: str, *extra: str):
    """A live server with this cast declared and account A as its default registry."""
    base = tmp_path_factory.mktemp(name)
    return start_server(base / "data", "--iam-config", str(write_config(base / "iam.json")), "--default-account", A,
                        *extra)


def client(server, who: Who | str, *, secret: str | None = None, token: str | None = None, region: str = REGION):
    """boto3 ECR client for a declared principal, or for an undeclared access key (a string)."""
    key = who if isinstance(who, str) else who.key
    return boto3.client(
        "ecr", endpoint_url=server.api_url, region_name=region, aws_access_key_id=key,
        aws_secret_access_key=secret or (who.secret if isinstance(who, Who) else "whatever"),
        aws_session_token=token if token is not None else (who.token if isinstance(who, Who) else None),
        config=Config(retries={"max_attempts": 1}),
    )


def aws_cli(server, who: Who | str, *args: str, secret: str | None = None) -> subprocess.CompletedProcess:
    key = who if isinstance(who, str) else who.key
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_DEFAULT_REGION=REGION, AWS_PAGER="",
               AWS_SECRET_ACCESS_KEY=secret or (who.secret if isinstance(who, Who) else "whatever"))
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    if isinstance(who, Who) and who.token:
        env["AWS_SESSION_TOKEN"] = who.token
    return subprocess.run(["aws", *args, "--endpoint-url", server.api_url, "--output", "json"],
                          capture_output=True, text=True, env=env, timeout=120)


def denial(principal_arn: str, action: str, resource: str, why: str) -> str:
    tail = {
        "identity": f"because no identity-based policy allows the {action} action",
        "resource": f"because no resource-based policy allows the {action} action",
        "explicit-identity": "with an explicit deny in an identity-based policy",
        "explicit-resource": "with an explicit deny in a resource-based policy",
    }[why]
    return f"User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {tail}"
