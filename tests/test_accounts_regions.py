"""Several accounts and regions at once: the access key names the account, the signature's
credential scope names the region, and nothing leaks between them."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, make_client
from tests.errors import error_of
from tests.images import build_image, push_via_api


def test_twelve_digit_key_is_the_account(server):
    other = make_client(server, access_key="111122223333")
    repo = other.create_repository(repositoryName="shared-name")["repository"]
    assert repo["registryId"] == "111122223333"
    assert repo["repositoryArn"] == "arn:aws:ecr:us-east-1:111122223333:repository/shared-name"
    assert repo["repositoryUri"] == f"111122223333.dkr.ecr.us-east-1.{server.registry}/shared-name"
    token = other.get_authorization_token()["authorizationData"][0]
    assert token["proxyEndpoint"] == f"http://111122223333.dkr.ecr.us-east-1.{server.registry}"


def test_state_never_leaks_between_accounts_and_regions(server):
    default = make_client(server)
    other_account = make_client(server, access_key="111122223333")
    other_region = make_client(server, region="eu-west-1")
    for client in (default, other_account, other_region):
        client.create_repository(repositoryName="same")
    push_via_api(default, "same", build_image(), "only-here")
    assert other_account.describe_images(repositoryName="same")["imageDetails"] == []
    assert other_region.describe_images(repositoryName="same")["imageDetails"] == []
    other_region.delete_repository(repositoryName="same")
    assert default.describe_repositories(repositoryNames=["same"])["repositories"]
    eu = make_client(server, region="eu-west-1")
    with pytest.raises(ClientError) as e:
        eu.describe_repositories(repositoryNames=["same"])
    assert error_of(e)[0] == "RepositoryNotFoundException"
    repo = eu.create_repository(repositoryName="eu-only")["repository"]
    assert repo["repositoryArn"].startswith(f"arn:aws:ecr:eu-west-1:{ACCOUNT}:")
    assert [r["repositoryName"] for r in default.describe_repositories()["repositories"]] == ["same"]


def test_registry_id_of_another_account_is_denied(server):
    default = make_client(server)
    make_client(server, access_key="111122223333").create_repository(repositoryName="theirs")
    with pytest.raises(ClientError) as e:
        default.describe_repositories(registryId="111122223333")
    assert error_of(e)[0] == "AccessDeniedException"
    assert default.describe_repositories(registryId=ACCOUNT)["repositories"] == []


def test_configured_access_keys_map_to_accounts(tmp_path):
    from tests.server import start_server

    live = start_server(tmp_path / "keys", env={"ECR_EMULATOR_ACCESS_KEYS": "AKIAMAPPED=444455556666"})
    try:
        mapped = make_client(live, access_key="AKIAMAPPED")
        assert mapped.create_repository(repositoryName="mm")["repository"]["registryId"] == "444455556666"
        unmapped = make_client(live, access_key="AKIAOTHER")
        assert unmapped.create_repository(repositoryName="mm")["repository"]["registryId"] == ACCOUNT
    finally:
        live.stop()
