"""The evaluator as a pure function: IAM's decision logic and every condition operator, in process."""

from __future__ import annotations

import pytest

from ecr_emulator.core.iam import evaluate
from ecr_emulator.core.iam.policy import compile_policy
from ecr_emulator.core.iam.principals import principal_for

A, B = "111111111111", "222222222222"
REPO = f"arn:aws:ecr:us-east-1:{A}:repository/app"
CI_A = principal_for(f"arn:aws:iam::{A}:user/ci", "AKIAAAAAAAAAAAAAAAA1")
CI_B = principal_for(f"arn:aws:iam::{B}:user/ci", "AKIABBBBBBBBBBBBBBB1")
ROLE_B = principal_for(f"arn:aws:iam::{B}:role/deploy", "ASIABBBBBBBBBBBBBBB2", "run-7")
ROOT_A = principal_for(f"arn:aws:iam::{A}:root", "AKIAROOTROOTROOTROO1")
ROOT_B = principal_for(f"arn:aws:iam::{B}:root", "AKIAROOTROOTROOTROO2")


class Keys(dict):
    def get(self, key):  # type: ignore[override]
        return super().get(key.lower())


def identity(*statements):
    return compile_policy({"Version": "2012-10-17", "Statement": list(statements)}, "identity")


def repo_policy(*statements):
    return compile_policy({"Version": "2012-10-17", "Statement": list(statements)}, "repository")


def allow(action="ecr:*", resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def grant(principal, action="ecr:*", effect="Allow", **extra):
    return {"Effect": effect, "Principal": {"AWS": principal}, "Action": action, **extra}


def decide(principal, ident, repository=None, registry=None, scope="V2", action="ecr:BatchGetImage",
           resource=REPO, keys=None, account=A):
    policies = None if principal.is_root else ident
    return evaluate.decide(principal, action, resource, account, Keys(keys or {}), policies, repository, registry,
                           scope)


def test_same_account_identity_or_resource_policy_suffices():
    assert decide(CI_A, [identity(allow())]).allowed
    assert decide(CI_A, [], repo_policy(grant(CI_A.arn))).allowed
    no = decide(CI_A, [])
    assert no.outcome == evaluate.NO_IDENTITY
    assert no.message == (
        f"User: arn:aws:iam::{A}:user/ci is not authorized to perform: ecr:BatchGetImage on resource: {REPO} "
        "because no identity-based policy allows the ecr:BatchGetImage action"
    )


def test_a_grant_to_the_account_delegates_to_identity_policies():
    assert not decide(CI_A, [], repo_policy(grant(A))).allowed
    assert not decide(CI_A, [], repo_policy(grant(f"arn:aws:iam::{A}:root"))).allowed
    assert decide(ROOT_A, None, repo_policy(grant(A))).allowed


def test_cross_account_needs_both_sides():
    both = decide(CI_B, [identity(allow())], repo_policy(grant(B)))
    assert both.allowed
    no_resource = decide(CI_B, [identity(allow())])
    assert no_resource.message.endswith("because no resource-based policy allows the ecr:BatchGetImage action")
    no_identity = decide(CI_B, [], repo_policy(grant(CI_B.arn)))
    assert no_identity.outcome == evaluate.NO_IDENTITY
    assert decide(ROOT_B, None, repo_policy(grant(B))).allowed
    assert not decide(ROOT_B, None).allowed


def test_explicit_deny_wins_and_is_worded_by_where_it_is():
    deny_here = repo_policy(grant("*", effect="Deny"), grant(CI_A.arn))
    d = decide(CI_A, [identity(allow())], deny_here)
    assert d.message.endswith("with an explicit deny in a resource-based policy")
    d = decide(CI_A, [identity(allow(), {"Effect": "Deny", "Action": "ecr:BatchGetImage", "Resource": "*"})])
    assert d.message.endswith("with an explicit deny in an identity-based policy")
    assert not decide(ROOT_A, None, deny_here).allowed


def test_roles_match_by_role_and_by_session_and_print_the_session():
    d = decide(ROLE_B, [identity(allow())])
    assert d.message.startswith(f"User: arn:aws:sts::{B}:assumed-role/deploy/run-7 is not authorized")
    assert decide(ROLE_B, [identity(allow())], repo_policy(grant(f"arn:aws:iam::{B}:role/deploy"))).allowed
    assert decide(ROLE_B, [identity(allow())], repo_policy(grant(f"arn:aws:sts::{B}:assumed-role/deploy/run-7"))).allowed
    assert not decide(ROLE_B, [identity(allow())], repo_policy(grant(f"arn:aws:sts::{B}:assumed-role/deploy/x"))).allowed


def test_not_action_not_resource_and_wildcards():
    assert decide(CI_A, [identity({"Effect": "Allow", "NotAction": "ecr:Delete*", "Resource": "*"})]).allowed
    assert not decide(CI_A, [identity({"Effect": "Allow", "NotAction": "ecr:BatchGet*", "Resource": "*"})]).allowed
    assert decide(CI_A, [identity(allow("ecr:batchget?mage"))]).allowed  # actions ignore case; ? is one character
    not_repo = {"Effect": "Allow", "Action": "ecr:Get*", "NotResource": REPO}
    assert decide(CI_A, [identity(not_repo)], action="ecr:GetAuthorizationToken", resource="*").allowed
    assert not decide(CI_A, [identity(not_repo)], action="ecr:GetDownloadUrlForLayer").allowed
    assert not decide(CI_A, [identity({"Effect": "Allow", "Action": "*", "NotResource": "arn:aws:ecr:*:*:repository/a*"})]).allowed
    assert decide(CI_A, [identity(allow(resource="arn:aws:ecr:us-east-1:*:repository/*"))]).allowed
    assert not decide(CI_A, [identity(allow(resource="arn:aws:ecr:eu-west-1:*:repository/*"))]).allowed


def test_not_principal():
    everyone_else = repo_policy({"Effect": "Deny", "NotPrincipal": {"AWS": CI_A.arn}, "Action": "ecr:*"})
    assert decide(CI_A, [identity(allow())], everyone_else).allowed
    assert not decide(CI_B, [identity(allow())], everyone_else).allowed


def test_get_authorization_token_is_judged_by_identity_alone():
    everyone = repo_policy(grant("*"))
    assert not decide(CI_A, [], everyone, everyone, action="ecr:GetAuthorizationToken", resource="*").allowed
    assert decide(CI_A, [identity(allow("ecr:GetAuthorizationToken"))], action="ecr:GetAuthorizationToken",
                  resource="*").allowed


def test_registry_policy_scope_v1_and_v2():
    registry = compile_policy({"Statement": [grant(B, "ecr:*", Resource=f"arn:aws:ecr:us-east-1:{A}:repository/*")]},
                              "registry")
    assert decide(CI_B, [identity(allow())], registry=registry, scope="V2").allowed
    assert not decide(CI_B, [identity(allow())], registry=registry, scope="V1").allowed
    assert decide(CI_B, [identity(allow())], registry=registry, scope="V1", action="ecr:CreateRepository").allowed


def test_policy_variables():
    own = identity(allow(resource="arn:aws:ecr:*:*:repository/${aws:username}/*"))
    assert decide(CI_A, [own], resource=f"arn:aws:ecr:us-east-1:{A}:repository/ci/app",
                  keys={"aws:username": "ci"}).allowed
    assert not decide(CI_A, [own], resource=f"arn:aws:ecr:us-east-1:{A}:repository/other/app",
                      keys={"aws:username": "ci"}).allowed
    assert not decide(CI_A, [own], keys={}).allowed  # missing variable: matches nothing
    literal = identity(allow(resource="arn:aws:ecr:*:*:repository/${*}"))
    assert not decide(CI_A, [literal]).allowed
    assert decide(CI_A, [literal], resource=f"arn:aws:ecr:us-east-1:{A}:repository/*").allowed
    old = compile_policy({"Version": "2008-10-17", "Statement": [allow(resource="arn:aws:ecr:*:*:repository/${x}")]},
                         "identity")
    assert decide(CI_A, [old], resource="arn:aws:ecr:us-east-1:1:repository/${x}").allowed


def cond(block, keys):
    return decide(CI_A, [identity(allow(Condition=block))], keys=keys).allowed


@pytest.mark.parametrize("block,keys,expected", [
    ({"StringEquals": {"aws:PrincipalTag/team": "build"}}, {"aws:principaltag/team": "build"}, True),
    ({"StringEquals": {"aws:PrincipalTag/team": "build"}}, {"aws:principaltag/team": "Build"}, False),
    ({"StringEqualsIgnoreCase": {"aws:username": "CI"}}, {"aws:username": "ci"}, True),
    ({"StringNotEquals": {"aws:username": ["a", "b"]}}, {"aws:username": "c"}, True),
    ({"StringNotEquals": {"aws:username": ["a", "b"]}}, {"aws:username": "a"}, False),
    ({"StringNotEquals": {"aws:username": "a"}}, {}, True),  # negated, key absent: true
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/c?"}}, {"aws:principalarn": "arn:aws:iam::1:user/ci"}, True),
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/c?"}}, {}, False),
    ({"StringNotLike": {"aws:username": "c*"}}, {"aws:username": "dev"}, True),
    ({"StringEqualsIfExists": {"aws:username": "x"}}, {}, True),
    ({"StringEqualsIfExists": {"aws:username": "x"}}, {"aws:username": "y"}, False),
    ({"NumericLessThan": {"aws:EpochTime": 2000000000}}, {"aws:epochtime": "1900000000"}, True),
    ({"NumericGreaterThanEquals": {"aws:EpochTime": "1900000000"}}, {"aws:epochtime": "1900000000"}, True),
    ({"NumericNotEquals": {"aws:EpochTime": "1"}}, {"aws:epochtime": "1"}, False),
    ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:currenttime": "2029-12-31T23:59:59Z"}, True),
    ({"DateGreaterThan": {"aws:CurrentTime": "2030-01-01"}}, {"aws:currenttime": "2029-12-31T23:59:59Z"}, False),
    ({"DateEquals": {"aws:EpochTime": "2030-01-01T00:00:00Z"}}, {"aws:epochtime": "1893456000"}, True),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:securetransport": "false"}, False),
    ({"Bool": {"aws:SecureTransport": False}}, {"aws:securetransport": "false"}, True),
    ({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.0/8"]}}, {"aws:sourceip": "127.0.0.1"}, True),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:sourceip": "127.0.0.1"}, False),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:sourceip": "127.0.0.1"}, True),
    ({"IpAddress": {"aws:SourceIp": "::1/128"}}, {"aws:sourceip": "::1"}, True),
    ({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/*"}}, {"aws:principalarn": "arn:aws:iam::1:role/x"}, True),
    ({"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/x"}}, {"aws:principalarn": "arn:aws:iam::1:role/x"}, False),
    ({"Null": {"aws:username": "true"}}, {}, True),
    ({"Null": {"aws:username": "false"}}, {}, False),
    ({"Null": {"aws:username": "false"}}, {"aws:username": "ci"}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:tagkeys": ["owner", "env"]}, True),
    ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["env"]}}, {}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:tagkeys": ["owner", "env"]}, False),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env", "team"]}}, {"aws:tagkeys": ["team", "env"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}}, {}, True),
    ({"ForAnyValue:StringNotLike": {"aws:TagKeys": "aws:*"}}, {"aws:tagkeys": ["aws:x", "env"]}, True),
    ({"StringEquals": {"aws:ResourceTag/env": "prod", "aws:username": "ci"}},
     {"aws:resourcetag/env": "prod", "aws:username": "ci"}, True),
    ({"StringEquals": {"aws:ResourceTag/env": "prod"}, "Bool": {"aws:SecureTransport": "true"}},
     {"aws:resourcetag/env": "prod", "aws:securetransport": "false"}, False),
    ({"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}},
     {"aws:resourcetag/owner": "ci", "aws:username": "ci"}, True),
    ({"StringEquals": {"aws:username": "${aws:PrincipalTag/alias, 'ci'}"}}, {"aws:username": "ci"}, True),
])
def test_condition_operators(block, keys, expected):
    assert cond(block, keys) is expected
