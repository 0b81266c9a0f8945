"""ECR login on the registry endpoint: the challenge, forged / expired / foreign tokens, Host routing."""

from __future__ import annotations

import base64

import requests

from tests.conftest import make_client
from tests.images import basic_auth, build_image, push_via_api


def test_challenge_without_credentials(server):
    r = requests.get(f"{server.registry_url}/v2/", timeout=10)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == (
        f'Basic realm="http://{server.registry}/",service="ecr.amazonaws.com"'
    )
    assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r.text.strip() == "Not Authorized"
    assert r.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    # every route asks, not only /v2/
    assert requests.get(f"{server.registry_url}/v2/x1/tags/list", timeout=10).status_code == 401


def test_valid_token_logs_in(server, ecr):
    r = requests.get(f"{server.registry_url}/v2/", headers={"Authorization": basic_auth(ecr)}, timeout=10)
    assert r.status_code == 200


def test_forged_and_malformed_credentials_are_401(server, ecr):
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    payload, _, signature = password.partition(".")
    forged = base64.b64encode(f"AWS:{payload}.{'A' * len(signature)}".encode()).decode()
    wrong_user = base64.b64encode(f"admin:{password}".encode()).decode()
    for auth in (f"Basic {forged}", f"Basic {wrong_user}", "Basic !!!", f"Bearer {token}", "Basic " +
                 base64.b64encode(b"AWS:").decode()):
        r = requests.get(f"{server.registry_url}/v2/", headers={"Authorization": auth}, timeout=10)
        assert r.status_code == 401, auth


def test_token_of_another_region_is_denied(server):
    eu = make_client(server, region="eu-west-1")
    r = requests.get(f"{server.registry_url}/v2/", headers={"Authorization": basic_auth(eu)}, timeout=10)
    assert r.status_code == 403
    assert r.json()["errors"][0]["code"] == "DENIED"
    # ...but it works on the eu-west-1 registry, addressed by its ECR-shaped host name
    host = f"123456789012.dkr.ecr.eu-west-1.localhost:{server.registry_port}"
    r = requests.get(f"{server.registry_url}/v2/", headers={"Authorization": basic_auth(eu), "Host": host},
                     timeout=10)
    assert r.status_code == 200


def test_host_picks_the_registry_and_the_account_must_match(server):
    other = make_client(server, access_key="111122223333")
    other.create_repository(repositoryName="theirs")
    push_via_api(other, "theirs", build_image(), "v1")
    host = f"111122223333.dkr.ecr.us-east-1.localhost:{server.registry_port}"
    mine = make_client(server)
    r = requests.get(f"{server.registry_url}/v2/theirs/tags/list",
                     headers={"Authorization": basic_auth(other), "Host": host}, timeout=10)
    assert r.status_code == 200 and r.json()["tags"] == ["v1"]
    denied = requests.get(f"{server.registry_url}/v2/theirs/tags/list",
                          headers={"Authorization": basic_auth(mine), "Host": host}, timeout=10)
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "DENIED"
    # on the default registry host their repository does not exist for them either
    r = requests.get(f"{server.registry_url}/v2/theirs/tags/list",
                     headers={"Authorization": basic_auth(other)}, timeout=10)
    assert r.status_code == 403


def test_download_urls_expire(server, ecr):
    ecr.create_repository(repositoryName="dl")
    image = build_image()
    push_via_api(ecr, "dl", image, "v1")
    url = ecr.get_download_url_for_layer(repositoryName="dl", layerDigest=image.layers[0].digest)["downloadUrl"]
    url = url.replace(server.registry, f"127.0.0.1:{server.registry_port}")
    assert requests.get(url, timeout=10).content == image.layers[0].data
    server.advance_clock(3601)
    assert requests.get(url, timeout=10).status_code == 403


def test_anonymous_requests_learn_nothing_but_the_challenge(server):
    for method, path in (("GET", "/v2/Bad_Name/tags/list"), ("POST", "/v2/x1/manifests/v1"),
                         ("DELETE", "/v2/nope/blobs/sha256:" + "0" * 64)):
        r = requests.request(method, f"{server.registry_url}{path}", timeout=10)
        assert r.status_code == 401 and r.text.strip() == "Not Authorized", (method, path)
