"""Put/Get/DeleteLifecyclePolicy through boto3: ECR's validation, wording and storage."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.errors import error_of

PREFIX = "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "


def rule(priority=1, action=None, description=None, **selection):
    selection.setdefault("tagStatus", "any")
    selection.setdefault("countType", "imageCountMoreThan")
    selection.setdefault("countNumber", 5)
    out = {"rulePriority": priority, "selection": selection, "action": action or {"type": "expire"}}
    if description is not None:
        out["description"] = description
    return out


def doc(*rules, pretty=False):
    return json.dumps({"rules": list(rules)}, indent=2 if pretty else None)


@pytest.fixture
def repo(ecr):
    ecr.create_repository(repositoryName="lc")
    return "lc"


def test_put_get_delete_roundtrip_with_compact_text(ecr, repo):
    text = doc(rule(description="keep five", tagStatus="tagged", tagPrefixList=["v"]), pretty=True)
    text = text + " " * max(0, 100 - len(text))
    out = ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
    compact = json.dumps(json.loads(text), separators=(",", ":"))
    assert out["lifecyclePolicyText"] == compact
    assert out["registryId"] == "123456789012" and out["repositoryName"] == repo
    got = ecr.get_lifecycle_policy(repositoryName=repo)
    assert got["lifecyclePolicyText"] == compact
    assert got["lastEvaluatedAt"].timestamp() == 0  # never evaluated
    deleted = ecr.delete_lifecycle_policy(repositoryName=repo)
    assert deleted["lifecyclePolicyText"] == compact
    for call in (ecr.get_lifecycle_policy, ecr.delete_lifecycle_policy):
        with pytest.raises(ClientError) as e:
            call(repositoryName=repo)
        assert error_of(e) == (
            "LifecyclePolicyNotFoundException",
            "Lifecycle policy does not exist for the repository with name 'lc' in the registry with id "
            "'123456789012'",
        )


def test_repository_must_exist(ecr):
    with pytest.raises(ClientError) as e:
        ecr.put_lifecycle_policy(repositoryName="nope", lifecyclePolicyText=doc(rule()) + " " * 50)
    assert error_of(e)[0] == "RepositoryNotFoundException"


def padded(text: str) -> str:
    return text + " " * max(0, 100 - len(text))


INVALID = [
    ("not json at all" + " " * 90, "Could not map policyString into LifecyclePolicy."),
    (json.dumps({"foo": 1}), 'object has missing required properties (["rules"])'),
    (json.dumps({"rules": [rule()], "foo": 1}),
     'object instance has properties which are not allowed by the schema: (["foo"])'),
    (doc({**rule(), "extra": True}), 'object instance has properties which are not allowed by the schema: (["extra"])'),
    (doc(rule(tagStatus="bogus")),
     'instance value (bogus) not found in enum :(possible values: ["any","tagged","untagged"])'),
    (doc(rule(countNumber=0)), "numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
    (doc(rule(countNumber="5")),
     'instance type (string) does not match any allowed primitive type (allowed: ["integer"])'),
    (json.dumps({"rules": []}), "array is too short: must have at least 1 elements but instance has 0 elements"),
    (doc(rule(action={"type": "delete"})),
     'instance value (delete) not found in enum :(possible values: ["expire","transition"])'),
    (doc(*[rule(priority=i, tagStatus="tagged", tagPrefixList=[f"p{i}"]) for i in range(1, 52)]),
     "array is too long: must have at most 50 elements but instance has 51 elements"),
]


@pytest.mark.parametrize("text,detail", INVALID)
def test_grammar_errors_carry_ecr_wording(ecr, repo, text, detail):
    with pytest.raises(ClientError) as e:
        ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=padded(text))
    assert error_of(e) == ("InvalidParameterException", PREFIX + detail + "'")


CROSS_RULE = [
    ("unique priorities", doc(rule(1, tagStatus="tagged", tagPrefixList=["a"]),
                              rule(1, tagStatus="tagged", tagPrefixList=["b"])), "rulePriority must be unique"),
    ("any must be last", doc(rule(1), rule(2, tagStatus="tagged", tagPrefixList=["a"])),
     "tagStatus 'any' must have the highest rulePriority"),
    ("two any rules", doc(rule(1), rule(2)), "tagStatus 'any' must have the highest rulePriority"),
    ("tagged needs a list", doc(rule(tagStatus="tagged")), "tagPrefixList or tagPatternList is required"),
    ("prefix xor pattern", doc(rule(tagStatus="tagged", tagPrefixList=["a"], tagPatternList=["b*"])),
     "cannot both be specified"),
    ("untagged has no list", doc(rule(tagStatus="untagged", tagPrefixList=["a"])),
     "can only be used when tagStatus is 'tagged'"),
    ("four wildcards at most", doc(rule(tagStatus="tagged", tagPatternList=["test*1*2*3*4*5*6"])),
     "more than 4 wildcards"),
    ("one untagged rule per class", doc(rule(1, tagStatus="untagged"), rule(2, tagStatus="untagged")),
     "only one rule may select untagged images of storageClass 'standard'"),
    ("prefix repeated", doc(rule(1, tagStatus="tagged", tagPrefixList=["prod"]),
                            rule(2, tagStatus="tagged", tagPrefixList=["prod", "x"])),
     "tag prefix 'prod' is used by more than one rule"),
    ("countUnit forbidden with count", doc(rule(countUnit="days")), "countUnit cannot be used"),
    ("countUnit required with since", doc(rule(countType="sinceImagePushed")), "countUnit is required"),
    ("archive only with transitioned", doc(rule(storageClass="archive")),
     "storageClass 'archive' can only be used with countType 'sinceImageTransitioned'"),
    ("transitioned needs archive", doc(rule(countType="sinceImageTransitioned", countUnit="days", countNumber=100)),
     "requires storageClass 'archive'"),
    ("transitioned only expires", doc(rule(countType="sinceImageTransitioned", countUnit="days", countNumber=100,
                                           storageClass="archive",
                                           action={"type": "transition", "targetStorageClass": "archive"})),
     "can only be used with action 'expire'"),
    ("archive 90 days", doc(rule(countType="sinceImageTransitioned", countUnit="days", countNumber=30,
                                 storageClass="archive")), "at least 90 days"),
    ("pulled only transitions", doc(rule(countType="sinceImagePulled", countUnit="days", countNumber=30)),
     "countType 'sinceImagePulled' can only be used with action 'transition'"),
    ("transition needs target", doc(rule(action={"type": "transition"})), "requires targetStorageClass 'archive'"),
    ("expire has no target", doc(rule(action={"type": "expire", "targetStorageClass": "archive"})),
     "targetStorageClass can only be used with action 'transition'"),
]


@pytest.mark.parametrize("name,text,fragment", CROSS_RULE, ids=[c[0] for c in CROSS_RULE])
def test_cross_rule_validation(ecr, repo, name, text, fragment):
    good = padded(doc(rule(tagStatus="tagged", tagPrefixList=["keep"])))
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=good)
    with pytest.raises(ClientError) as e:
        ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=padded(text))
    code, message = error_of(e)
    assert code == "InvalidParameterException"
    assert message.startswith(PREFIX) and fragment in message, message
    # a policy that fails validation changes nothing
    assert ecr.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"] == json.dumps(
        json.loads(good), separators=(",", ":"))


def test_valid_policies_of_every_kind(ecr, repo):
    text = doc(
        rule(1, tagStatus="tagged", tagPatternList=["prod*", "*-stable"], countType="sinceImagePushed",
             countUnit="days", countNumber=365),
        rule(2, tagStatus="untagged", countType="sinceImagePushed", countUnit="days", countNumber=7),
        rule(3, tagStatus="tagged", tagPrefixList=["dev"], countType="sinceImagePulled", countUnit="days",
             countNumber=30, action={"type": "transition", "targetStorageClass": "archive"}),
        rule(4, tagStatus="untagged", storageClass="archive", countType="sinceImageTransitioned",
             countUnit="days", countNumber=90),
        rule(5, tagStatus="any", countType="imageCountMoreThan", countNumber=100),
    )
    ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText=text)
    assert json.loads(ecr.get_lifecycle_policy(repositoryName=repo)["lifecyclePolicyText"]) == json.loads(text)


def test_model_length_limits(ecr, repo):
    with pytest.raises(ClientError) as e:  # botocore checks the 100-character minimum itself; raw
        ecr.put_lifecycle_policy(repositoryName=repo, lifecyclePolicyText="x" * 30721)
    assert error_of(e)[0] == "InvalidParameterException"
    assert "must have length less than or equal to 30720" in error_of(e)[1]
