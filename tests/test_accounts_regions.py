"""Several accounts and regions at once: the access key names the account, the signature's
credential scope names the region, and nothing leaks between them."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pytest
import requests
from botocore.exceptions import ClientError

from tests.conftest import ACCOUNT, make_client
from tests.errors import error_of
from tests.images import build_image, login_password, push_via_api, push_with_skopeo
from tests.server import start_server
from tests.tools import need, run


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


def test_registries_with_ports_of_their_own_need_no_host_names(tmp_path):
    """--registry-port-map: another account's and region's repositoryUri is localhost:<port>/name,
    which skopeo resolves on a stock machine (no /etc/hosts entry, no wildcard DNS)."""
    need("skopeo")
    live = start_server(tmp_path / "ports", "--registry-port-map",
                        "210987654321/eu-west-1=0,123456789012/ap-south-1=0")
    try:
        ports = dict(re.findall(r"ecr-emulator registry (\d{12}/[a-z0-9-]+) listening on http://[^:]+:(\d+)",
                                live.log()))
        assert set(ports) == {"210987654321/eu-west-1", "123456789012/ap-south-1"}
        other = make_client(live, access_key="210987654321", region="eu-west-1")
        host = f"localhost:{ports['210987654321/eu-west-1']}"
        repo = other.create_repository(repositoryName="team/app")["repository"]
        assert repo["repositoryUri"] == f"{host}/team/app"
        data = other.get_authorization_token()["authorizationData"][0]
        assert data["proxyEndpoint"] == f"http://{host}"
        image, auth = push_with_skopeo(other, f"{repo['repositoryUri']}:v1", tmp_path)
        details = other.describe_images(repositoryName="team/app")["imageDetails"]
        assert [(d["imageDigest"], d["imageTags"]) for d in details] == [(image.digest, ["v1"])]
        assert json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{host}/team/app:v1",
                              env=auth))["Digest"] == image.digest
        # the default registry and the other mapped one are separate registries
        assert make_client(live).describe_repositories()["repositories"] == []
        mumbai = make_client(live, region="ap-south-1")
        assert mumbai.describe_repositories()["repositories"] == []
        mumbai_uri = mumbai.create_repository(repositoryName="team/app")["repository"]["repositoryUri"]
        assert mumbai_uri == f"localhost:{ports['123456789012/ap-south-1']}/team/app"
        # the default account's login is not valid for another account's registry
        denied = requests.get(f"http://{host}/v2/team/app/tags/list", auth=("AWS", login_password(make_client(live))),
                              timeout=10)
        assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"
    finally:
        live.stop()


@pytest.mark.parametrize("value, says", [
    ("eu-west-1=5002", "ACCOUNT/REGION=PORT"),
    ("210987654321/eu-west-1=70000", "ACCOUNT/REGION=PORT"),
    ("210987654321/eu-west-1=5002,210987654321/eu-west-1=5003", "twice"),
    ("123456789012/us-east-1=5002", "default registry"),
])
def test_registry_port_map_is_checked(tmp_path, value, says):
    proc = subprocess.run([sys.executable, "-m", "ecr_emulator", "serve", "--data-dir", str(tmp_path),
                           "--registry-port-map", value], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert says in proc.stderr and "Traceback" not in proc.stderr


def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "ecr_emulator", "serve", "--data-dir", str(tmp_path),
                               "--api-port", "0", "--registry-port", "0", "--registry-port-map",
                               f"210987654321/eu-west-1={port}"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"ecr-emulator: cannot listen on 127.0.0.1:{port} (--registry-port-map 210987654321/eu-west-1): "
        "Address already in use"]


def test_registry_hosts_name_and_read_back_ported_registries():
    from ecr_emulator.core.naming import RegistryHosts, Scope

    default, other = Scope("123456789012", "us-east-1"), Scope("210987654321", "eu-west-1")
    hosts = RegistryHosts("ecr:5000", default, ports={other: 5002})
    assert hosts.host_for(default) == "ecr:5000"
    assert hosts.host_for(other) == "ecr:5002"
    assert hosts.scope_from_host("ecr:5002") == other
    assert hosts.scope_from_host("localhost:5002") == other  # the port decides, whatever the name
    assert hosts.scope_from_host("ecr:5000") == default
    third = Scope("111122223333", "us-west-2")
    assert hosts.host_for(third) == "111122223333.dkr.ecr.us-west-2.ecr:5000"
    assert hosts.scope_from_host("111122223333.dkr.ecr.us-west-2.ecr:5000") == third
    templated = RegistryHosts("{account}.{region}.ecr.test:443", default, ports={other: 8443})
    assert templated.host_for(other) == "210987654321.eu-west-1.ecr.test:8443"
    assert RegistryHosts("[::1]:5000", default, ports={other: 5002}).host_for(other) == "[::1]:5002"
