"""IAM's policy grammar and the --iam-config file, checked in process."""

from __future__ import annotations

import json

import pytest

from ecr_emulator.core.iam.conditions import PolicyError
from ecr_emulator.core.iam.policy import compile_policy, parse
from ecr_emulator.core.iam.principals import IamConfig, IamConfigError

ALLOW = {"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}
GRANT = {"Effect": "Allow", "Principal": {"AWS": "111111111111"}, "Action": "ecr:BatchGetImage"}


def doc(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


@pytest.mark.parametrize("statement,reason", [
    ({**ALLOW, "Condition": {"StringEqualz": {"aws:username": "x"}}}, "unknown condition operator 'StringEqualz'"),
    ({**ALLOW, "Condition": {"NullIfExists": {"aws:username": "true"}}}, "unknown condition operator"),
    ({**ALLOW, "Condition": {"StringEquals": {"aws:userName2": "x"}}}, "unknown global condition key"),
    ({**ALLOW, "Condition": {"StringEquals": {"ecr:ImageTag": "x"}}}, "unknown ECR condition key"),
    ({**ALLOW, "Condition": {"StringEquals": {"aws:ResourceTag/": "x"}}}, "names no tag key"),
    ({**ALLOW, "Condition": {"NumericLessThan": {"aws:EpochTime": "soon"}}}, "'soon' is not a valid NumericLessThan"),
    ({**ALLOW, "Condition": {"DateLessThan": {"aws:CurrentTime": "tomorrow"}}}, "is not a valid DateLessThan"),
    ({**ALLOW, "Condition": {"IpAddress": {"aws:SourceIp": "300.0.0.0/8"}}}, "is not a valid IpAddress"),
    ({**ALLOW, "Condition": {"Bool": {"aws:SecureTransport": "yes"}}}, "is not a valid Bool"),
    ({**ALLOW, "Condition": {"StringEquals": {"aws:username": []}}}, "at least one value"),
    ({**ALLOW, "Condition": {"StringEquals": {"aws:username": [{"x": 1}]}}}, "strings, numbers or booleans"),
    ({**ALLOW, "Condition": {"StringEquals": {"aws:username": "${aws:username"}}}, None),  # not a variable: text
    ({**ALLOW, "Condition": {"StringEquals": {"aws:username": "${}"}}}, "malformed policy variable"),
    ({**ALLOW, "Principal": "*"}, "names no Principal"),
    ({"Effect": "Allow", "Action": "ecr:*"}, "needs Resource or NotResource"),
    ({**ALLOW, "NotAction": "ecr:x"}, "exactly one of Action and NotAction"),
    ({**ALLOW, "Effect": "allow"}, "Effect must be"),
    ({**ALLOW, "Resource": "repo/app"}, "is not '*' or an ARN"),
    ({**ALLOW, "Action": "BatchGetImage"}, "is not an action"),
    ({**ALLOW, "Action": []}, "non-empty string or list"),
    ({**ALLOW, "Extra": 1}, "unknown element"),
])
def test_identity_policy_grammar(statement, reason):
    if reason is None:
        compile_policy(doc(statement), "identity")
        return
    with pytest.raises(PolicyError) as e:
        compile_policy(doc(statement), "identity")
    assert reason in str(e.value) and "Statement[0]" in str(e.value)


@pytest.mark.parametrize("statement,reason", [
    ({"Effect": "Allow", "Action": "ecr:*"}, "exactly one of Principal and NotPrincipal"),
    ({**GRANT, "Action": "s3:GetObject"}, "may only name ECR actions"),
    ({**GRANT, "Principal": {"AWS": "arn:aws:iam::*:root"}}, "is not \"*\", an account id"),
    ({**GRANT, "Principal": {"AWS": "12345"}}, "is not \"*\", an account id"),
    ({**GRANT, "Principal": {"Someone": "x"}}, "must be \"*\" or an object"),
    ({**GRANT, "Principal": "someone"}, "must be \"*\" or an object"),
])
def test_resource_policy_grammar(statement, reason):
    with pytest.raises(PolicyError) as e:
        compile_policy(doc(statement), "repository")
    assert reason in str(e.value)


def test_documents_and_the_cache():
    for bad in ([], {"Statement": []}, {"Version": "2020-01-01", "Statement": [GRANT]}, {"Statement": [GRANT], "X": 1}):
        with pytest.raises(PolicyError):
            compile_policy(bad, "repository")
    ok = compile_policy({"Statement": GRANT}, "repository")  # a single statement object, no Version
    assert len(ok.statements) == 1
    text = json.dumps(doc(GRANT, {**GRANT, "Principal": {"Service": "ecr.amazonaws.com"}}))
    assert parse(text, "repository") is parse(text, "repository")
    with pytest.raises(PolicyError):
        parse("[" * 20000, "repository")


def write(tmp_path, body) -> str:
    path = tmp_path / "iam.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return str(path)


def entry(**over):
    base = {"accessKeyId": "AKIACIUSER0000000001", "secretAccessKey": "s3cret/Key+x",
            "arn": "arn:aws:iam::111111111111:user/ci", "policies": [doc(ALLOW)]}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_config_file_declares_users_and_roles(tmp_path):
    cfg = IamConfig.load(write(tmp_path, {"principals": [
        entry(tags={"team": "build"}),
        entry(accessKeyId="ASIAROLE000000000001", arn="arn:aws:iam::222222222222:role/ops/deploy",
              sessionName="run-1", sessionToken="tok"),
        entry(accessKeyId="AKIAROOT000000000001", arn="arn:aws:iam::333333333333:root", policies=None),
    ]}))
    user = cfg.get("AKIACIUSER0000000001")
    assert user.principal.kind == "User" and user.principal.username == "ci" and user.tags == {"team": "build"}
    role = cfg.get("ASIAROLE000000000001")
    assert role.principal.arn == "arn:aws:sts::222222222222:assumed-role/deploy/run-1"
    assert role.principal.entity_arn == "arn:aws:iam::222222222222:role/ops/deploy"
    assert role.session_token == "tok" and role.principal.kind == "AssumedRole"
    root = cfg.get("AKIAROOT000000000001")
    assert root.principal.is_root and cfg.identity_policies(root.principal) is None
    assert len(cfg.identity_policies(user.principal)) == 1
    assert cfg.get("AKIAUNKNOWN000000001") is None


@pytest.mark.parametrize("body,needle", [
    ("{not json", "not valid JSON"),
    ({"users": []}, 'expected {"principals": [...]}'),
    ({"principals": [entry(accessKeyId="short")]}, "principals[0] (short): accessKeyId must be"),
    ({"principals": [entry(secretAccessKey="sécret")]}, "secretAccessKey must be printable ASCII"),
    ({"principals": [entry(arn="arn:aws:iam::1:user/ci")]}, "arn must be"),
    ({"principals": [entry(), entry()]}, "declared twice"),
    ({"principals": [entry(extra=1)]}, "unknown field(s) ['extra']"),
    ({"principals": [entry(policies=[doc({**ALLOW, "Condition": {"Bogus": {"aws:username": "x"}}})])]},
     "principals[0] (AKIACIUSER0000000001): policies[0]: Statement[0].Condition.Bogus: unknown condition operator"),
    ({"principals": [entry(sessionName="x1")]}, "sessionName goes with a role ARN only"),
    ({"principals": [entry(arn="arn:aws:iam::111111111111:root")]}, "the account root has no identity policies"),
    ({"principals": [entry(policies=[doc(*[ALLOW] * 200)])]}, "larger than IAM's 6144 characters"),
])
def test_config_file_faults_name_the_file_and_the_entry(tmp_path, body, needle):
    path = write(tmp_path, body)
    with pytest.raises(IamConfigError) as e:
        IamConfig.load(path)
    assert str(e.value).startswith(path) and needle in str(e.value)
    assert "\n" not in str(e.value)
