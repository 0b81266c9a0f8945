"""Registry scanning configuration, filter matching and each repository's effective configuration."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from ecr_emulator.core.scanning.configuration import filter_matches
from tests.conftest import ACCOUNT
from tests.errors import error_of

REPOS = ["prod", "repo-prod", "prod-repo", "repo-prod-repo", "prodrepo"]
# ECR-BEHAVIOUR 8.2: without '*' a filter is a substring match; with '*' it must match the whole name.
TABLE = {
    "prod": [True, True, True, True, True],
    "*prod": [True, True, False, False, False],
    "prod*": [True, False, True, False, True],
    "*prod*": [True, True, True, True, True],
    "prod*repo": [False, False, True, False, True],
}


@pytest.mark.parametrize("pattern", TABLE)
def test_filter_matching_table(pattern):
    assert [filter_matches(pattern, r) for r in REPOS] == TABLE[pattern]


def test_default_configuration_is_basic_without_rules(ecr):
    out = ecr.get_registry_scanning_configuration()
    assert out["registryId"] == ACCOUNT
    assert out["scanningConfiguration"] == {"scanType": "BASIC", "rules": []}


def test_put_and_get_round_trip(ecr):
    rules = [{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "prod", "filterType": "WILDCARD"}]}]
    out = ecr.put_registry_scanning_configuration(scanType="BASIC", rules=rules)
    assert out["registryScanningConfiguration"] == {"scanType": "BASIC", "rules": rules}
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"] == {"scanType": "BASIC", "rules": rules}


def test_enhanced_without_rules_scans_everything_continuously(ecr):
    out = ecr.put_registry_scanning_configuration(scanType="ENHANCED")
    assert out["registryScanningConfiguration"]["rules"] == [
        {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}
    ]


@pytest.mark.parametrize("scan_type,frequency", [("BASIC", "CONTINUOUS_SCAN"), ("ENHANCED", "MANUAL")])
def test_frequency_must_suit_the_scan_type(ecr, scan_type, frequency):
    with pytest.raises(ClientError) as e:
        ecr.put_registry_scanning_configuration(
            scanType=scan_type,
            rules=[{"scanFrequency": frequency, "repositoryFilters": [{"filter": "a", "filterType": "WILDCARD"}]}],
        )
    assert error_of(e)[0] == "ValidationException"
    assert ecr.get_registry_scanning_configuration()["scanningConfiguration"]["scanType"] == "BASIC"


def test_one_rule_per_frequency_and_filter_syntax(ecr):
    rule = {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "a", "filterType": "WILDCARD"}]}
    with pytest.raises(ClientError) as e:
        ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[rule, rule])
    assert error_of(e)[0] == "ValidationException"
    bad = {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "Bad_Upper", "filterType": "WILDCARD"}]}
    with pytest.raises(ClientError) as e:
        ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[bad])
    assert error_of(e)[0] == "InvalidParameterException"
    assert "must satisfy regular expression" in error_of(e)[1]


def _by_name(ecr, names):
    out = ecr.batch_get_repository_scanning_configuration(repositoryNames=names)
    return {c["repositoryName"]: c for c in out["scanningConfigurations"]}, out["failures"]


def test_basic_effective_configuration_and_applied_filters(ecr):
    for name in REPOS + ["other", "legacy"]:
        ecr.create_repository(repositoryName=name)
    ecr.put_image_scanning_configuration(repositoryName="legacy", imageScanningConfiguration={"scanOnPush": True})
    ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "prod*repo", "filterType": "WILDCARD"},
                                                                {"filter": "*prod", "filterType": "WILDCARD"}]},
    ])
    configs, failures = _by_name(ecr, REPOS + ["other", "legacy", "missing"])
    assert failures == [{
        "repositoryName": "missing", "failureCode": "REPOSITORY_NOT_FOUND",
        "failureReason": f"The repository with name 'missing' does not exist in the registry with id '{ACCOUNT}'",
    }]
    assert configs["prod-repo"]["appliedScanFilters"] == [{"filter": "prod*repo", "filterType": "WILDCARD"}]
    assert configs["prod"]["appliedScanFilters"] == [{"filter": "*prod", "filterType": "WILDCARD"}]
    assert {n: c["scanFrequency"] for n, c in configs.items()} == {
        "prod": "SCAN_ON_PUSH", "repo-prod": "SCAN_ON_PUSH", "prod-repo": "SCAN_ON_PUSH",
        "repo-prod-repo": "MANUAL", "prodrepo": "SCAN_ON_PUSH", "other": "MANUAL",
        "legacy": "SCAN_ON_PUSH",  # the deprecated repository-level scanOnPush still applies under BASIC
    }
    assert configs["other"]["appliedScanFilters"] == [] and configs["other"]["scanOnPush"] is False
    assert configs["legacy"]["scanOnPush"] is True
    assert configs["prod"]["repositoryArn"] == f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/prod"


def test_enhanced_continuous_wins_and_unmatched_repositories_are_not_scanned(ecr):
    for name in ("api", "api-worker", "web", "legacy"):
        ecr.create_repository(repositoryName=name)
    ecr.put_image_scanning_configuration(repositoryName="legacy", imageScanningConfiguration={"scanOnPush": True})
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "api", "filterType": "WILDCARD"}]},
        {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*worker", "filterType": "WILDCARD"}]},
    ])
    configs, _ = _by_name(ecr, ["api", "api-worker", "web", "legacy"])
    assert configs["api"]["scanFrequency"] == "SCAN_ON_PUSH"
    assert configs["api-worker"]["scanFrequency"] == "CONTINUOUS_SCAN"
    assert configs["api-worker"]["appliedScanFilters"] == [{"filter": "*worker", "filterType": "WILDCARD"}]
    assert configs["web"]["scanFrequency"] == "MANUAL" and configs["web"]["appliedScanFilters"] == []
    assert configs["legacy"]["scanFrequency"] == "MANUAL"  # the repository flag is a basic-scanning setting


def test_configuration_is_per_registry(ecr, server):
    from tests.conftest import make_client

    ecr.put_registry_scanning_configuration(scanType="ENHANCED")
    other = make_client(server, region="eu-west-1")
    assert other.get_registry_scanning_configuration()["scanningConfiguration"]["scanType"] == "BASIC"
