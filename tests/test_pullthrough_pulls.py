"""Pulls through the pull through cache from real upstream registries (CNCF Distribution on
loopback): skopeo, podman and raw registry clients, the API (BatchGetImage,
GetDownloadUrlForLayer), twenty pulls at once, the daily refresh, an upstream that is down,
wrong credentials and the permissions a first pull needs."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
import requests
from botocore.exceptions import ClientError

from tests import pullthrough_world
from tests.images import build_image, build_index, login_password, random_layer
from tests.pullthrough_world import HUB_SECRET, NO_CREATE_KEY, NO_IMPORT_KEY, OCI_ACCEPT, concurrently
from tests.tools import need, podman_logged_in, run

pytestmark = pytest.mark.clients
DAY = 24 * 3600


@pytest.fixture
def w(ptc_world):
    world = ptc_world
    world.reset()
    ecr = world.client()
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub", upstreamRegistryUrl="registry-1.docker.io",
                                       credentialArn=HUB_SECRET)
    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="k8s", upstreamRegistryUrl="registry.k8s.io")
    return world


@pytest.fixture
def skopeo(w, tmp_path):
    need("skopeo")
    auth = tmp_path / "auth.json"
    run("skopeo", "login", "--tls-verify=false", "--authfile", str(auth), "-u", "AWS", "--password-stdin",
        w.server.registry, input=login_password(w.client()))

    def skopeo_(*args: str) -> str:
        return run("skopeo", *args, env={"REGISTRY_AUTH_FILE": str(auth)})

    return skopeo_


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_skopeo_pulls_single_and_multi_arch_byte_identical(w, skopeo, tmp_path):
    single = build_image([random_layer(300_000), random_layer(1000)])
    children = [build_image(architecture=a) for a in ("amd64", "arm64")]
    index = build_index(children)
    w.open.push({"v1": single, "multi": index}, "team/app", tmp_path)
    reg = w.server.registry
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{reg}/quay/team/app:v1")
    assert raw.encode() == single.manifest
    skopeo("copy", "--src-tls-verify=false", f"docker://{reg}/quay/team/app:v1", f"oci:{tmp_path / 'one'}:v1")
    for blob in single.blobs:
        assert (tmp_path / "one" / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes() == blob.data
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{reg}/quay/team/app:multi",
           f"oci:{tmp_path / 'all'}:multi")
    assert json.loads((tmp_path / "all" / "index.json").read_text())["manifests"][0]["digest"] == index.digest
    ecr = w.client()
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName="quay/team/app")["imageDetails"]}
    assert set(details) == {single.digest, index.digest, *(c.digest for c in children)}  # index and every child
    assert details[index.digest]["imageTags"] == ["multi"] and details[single.digest]["imageTags"] == ["v1"]
    assert details[single.digest]["imageSizeInBytes"] == single.size
    repo = ecr.describe_repositories(repositoryNames=["quay/team/app"])["repositories"][0]
    assert repo["imageTagMutability"] == "MUTABLE" and repo["encryptionConfiguration"] == {"encryptionType": "AES256"}
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{reg}/quay/team/app"))
    assert sorted(tags["Tags"]) == ["multi", "v1"]  # listing shows what is cached, as on ECR
    assert len(w.open.requests("GET", "/v2/team/app/manifests/v1")) == 1
    skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{reg}/quay/team/app:v1")
    assert len(w.open.requests("GET", "/v2/team/app/manifests/v1")) == 1  # served from the cache


def test_podman_pulls_through_the_cache(w, tmp_path):
    image = build_image([random_layer(50_000)])
    w.open.push({"v1": image}, "podman/app", tmp_path)
    with podman_logged_in(w.server.registry, login_password(w.client()), tmp_path) as podman:
        podman("pull", "--tls-verify=false", f"{w.server.registry}/quay/podman/app:v1")
        pulled = json.loads(podman("images", "--format", "json"))
    assert any(f"{w.server.registry}/quay/podman/app:v1" in (i.get("Names") or []) for i in pulled)
    assert w.client().describe_images(repositoryName="quay/podman/app")["imageDetails"][0]["imageDigest"] == \
        image.digest


def test_twenty_concurrent_pulls_fetch_each_blob_once(w, tmp_path):
    image = build_image([random_layer(3_000_000), random_layer(2_000_000), random_layer(1_000_000)])
    w.open.push({"busy": image}, "crowd/app", tmp_path)
    tokens = [w.session() for _ in range(20)]

    def pull(i: int) -> dict[str, bytes]:
        s, base = tokens[i], w.server.registry_url + "/v2/quay/crowd/app"
        r = s.get(f"{base}/manifests/busy", headers={"Accept": OCI_ACCEPT}, timeout=300)
        assert r.status_code == 200, r.text
        got = {"manifest": r.content}
        for desc in [json.loads(r.content)["config"], *json.loads(r.content)["layers"]]:
            b = s.get(f"{base}/blobs/{desc['digest']}", timeout=300)
            assert b.status_code == 200, b.text
            got[desc["digest"]] = b.content
        return got

    results = concurrently(20, pull)
    for got in results:
        assert got["manifest"] == image.manifest
        assert {d: sha(data) for d, data in got.items() if d != "manifest"} == {b.digest: b.digest for b in image.blobs}
    fetched = Counter(w.open.requests("GET", "/v2/crowd/app/blobs/"))
    assert fetched == Counter({f"/v2/crowd/app/blobs/{b.digest}": 1 for b in image.blobs})
    assert len(w.open.requests("GET", "/v2/crowd/app/manifests/busy")) == 1


def test_refresh_after_a_day_on_the_emulator_clock(w, tmp_path):
    first, second = build_image(), build_image()
    w.open.push({"rolling": first}, "daily/app", tmp_path)
    assert w.get("/v2/quay/daily/app/manifests/rolling").content == first.manifest
    w.open.push({"rolling": second}, "daily/app", tmp_path)
    assert w.get("/v2/quay/daily/app/manifests/rolling").content == first.manifest  # within the day: cached
    w.server.advance_clock(DAY - 120)
    assert w.get("/v2/quay/daily/app/manifests/rolling").content == first.manifest
    w.server.advance_clock(240)
    assert w.get("/v2/quay/daily/app/manifests/rolling").content == second.manifest  # checked upstream, updated
    assert w.get(f"/v2/quay/daily/app/blobs/{second.layers[0].digest}").content == second.layers[0].data
    details = {d["imageDigest"]: d for d in w.client().describe_images(repositoryName="quay/daily/app")["imageDetails"]}
    assert details[second.digest]["imageTags"] == ["rolling"] and "imageTags" not in details[first.digest]
    assert len(w.open.requests("GET", "/v2/daily/app/manifests/rolling")) == 2
    assert w.get("/v2/quay/daily/app/manifests/rolling").content == second.manifest
    assert len(w.open.requests("GET", "/v2/daily/app/manifests/rolling")) == 2  # next check in a day again
    w.server.advance_clock(DAY + 60)  # unchanged upstream: one check, nothing stored
    assert w.get("/v2/quay/daily/app/manifests/rolling").content == second.manifest
    assert len(w.open.requests("GET", "/v2/daily/app/manifests/rolling")) == 3
    assert len(w.client().describe_images(repositoryName="quay/daily/app")["imageDetails"]) == 2


def test_upstream_down_serves_the_cached_copy(w, tmp_path):
    ecr = w.client()
    image = build_image()
    w.flaky.push({"v1": image}, "infra/pause", tmp_path)
    assert w.get("/v2/k8s/infra/pause/manifests/v1").content == image.manifest
    w.flaky.stop()
    w.server.advance_clock(DAY + 60)  # due a check, and upstream cannot be reached
    r = w.get("/v2/k8s/infra/pause/manifests/v1")
    assert r.status_code == 200 and r.content == image.manifest
    assert w.get(f"/v2/k8s/infra/pause/blobs/{image.layers[0].digest}").content == image.layers[0].data
    got = ecr.batch_get_image(repositoryName="k8s/infra/pause", imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageManifest"].encode() == image.manifest
    r = w.get("/v2/k8s/infra/pause/manifests/v2")  # never cached
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert "unavailable" in r.json()["errors"][0]["message"]
    r = w.get("/v2/k8s/infra/other/manifests/v1")  # the repository would be created: nothing is
    assert r.status_code == 404
    failures = ecr.batch_get_image(repositoryName="k8s/infra/pause", imageIds=[{"imageTag": "v2"}])["failures"]
    assert failures[0]["failureCode"] == "UpstreamUnavailable"
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["k8s/infra/pause"]


def test_credentials_and_docker_hub_official_images(w, tmp_path):
    ecr = w.client()
    image = build_image()
    w.hub.push({"3.20": image}, "library/alpine", tmp_path)
    r = w.get("/v2/docker-hub/alpine/manifests/3.20")  # official images live under library/
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    assert "library/" in r.json()["errors"][0]["message"]
    w.write_secrets({HUB_SECRET: {"username": pullthrough_world.HUB_USER, "accessToken": "wrong"}})
    r = w.get("/v2/docker-hub/library/alpine/manifests/3.20")
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    assert r.json()["errors"][0]["message"].startswith("The authentication to the upstream registry failed.")
    failures = ecr.batch_get_image(repositoryName="docker-hub/library/alpine", imageIds=[{"imageTag": "3.20"}])
    assert failures["failures"][0]["failureCode"] == "UpstreamAccessDenied"
    w.write_secrets({})  # a secret that is gone: ECR's UnableToGetUpstreamImageException
    with pytest.raises(ClientError) as exc:
        ecr.batch_get_image(repositoryName="docker-hub/library/alpine", imageIds=[{"imageTag": "3.20"}])
    assert exc.value.response["Error"]["Code"] == "UnableToGetUpstreamImageException"
    w.write_secrets({HUB_SECRET: {"username": pullthrough_world.HUB_USER, "accessToken": pullthrough_world.HUB_PASSWORD}})
    r = w.get("/v2/docker-hub/library/alpine/manifests/3.20")
    assert r.status_code == 200 and r.content == image.manifest
    assert w.get(f"/v2/docker-hub/library/alpine/blobs/{image.config.digest}").content == image.config.data


def test_the_api_path_and_templates(w, tmp_path):
    ecr = w.client()
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "Pull", "Effect": "Allow",
                         "Principal": {"AWS": "210987654321"}, "Action": ["ecr:BatchGetImage"]}]})
    ecr.create_repository_creation_template(prefix="quay", appliedFor=["PULL_THROUGH_CACHE"], repositoryPolicy=policy,
                                            imageTagMutability="MUTABLE_WITH_EXCLUSION",
                                            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD",
                                                                                 "filter": "release-*"}])
    a, b = build_image([random_layer(200_000)]), build_image()
    w.open.push({"a": a, "b": b}, "api/app", tmp_path)
    got = ecr.batch_get_image(repositoryName="quay/api/app", imageIds=[{"imageTag": "a"}, {"imageTag": "b"},
                                                                      {"imageTag": "missing"}])
    assert sorted(i["imageId"]["imageDigest"] for i in got["images"]) == sorted([a.digest, b.digest])
    assert [i["imageManifest"].encode() for i in got["images"] if i["imageId"]["imageTag"] == "a"] == [a.manifest]
    assert got["failures"] == [{"imageId": {"imageTag": "missing"}, "failureCode": "ImageNotFound",
                                "failureReason": "Requested image not found"}]
    for blob in a.blobs:
        url = ecr.get_download_url_for_layer(repositoryName="quay/api/app", layerDigest=blob.digest)["downloadUrl"]
        assert requests.get(url, timeout=60).content == blob.data
    repo = ecr.describe_repositories(repositoryNames=["quay/api/app"])["repositories"][0]
    assert repo["imageTagMutability"] == "MUTABLE_WITH_EXCLUSION"  # the PULL_THROUGH_CACHE template applied
    assert json.loads(ecr.get_repository_policy(repositoryName="quay/api/app")["policyText"]) == json.loads(policy)


def test_permissions_a_first_pull_needs(w, tmp_path):
    image = build_image()
    w.open.push({"v1": image}, "perm/app", tmp_path)
    r = w.get("/v2/quay/perm/app/manifests/v1", access_key=NO_CREATE_KEY)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    with pytest.raises(ClientError) as exc:
        w.client(NO_CREATE_KEY).batch_get_image(repositoryName="quay/perm/app", imageIds=[{"imageTag": "v1"}])
    assert exc.value.response["Error"]["Code"] == "RepositoryNotFoundException"
    r = w.get("/v2/quay/perm/app/manifests/v1", access_key=NO_IMPORT_KEY)
    assert r.status_code == 404 and r.json()["errors"][0] == {"code": "MANIFEST_UNKNOWN",
                                                               "message": "Requested image not found", "detail": None}
    assert w.client().describe_repositories()["repositories"] == []
    assert w.get("/v2/quay/perm/app/manifests/v1").status_code == 200  # the root may import
    for key in (NO_CREATE_KEY, NO_IMPORT_KEY):  # reading what is cached needs no import permission
        assert w.get("/v2/quay/perm/app/manifests/v1", access_key=key).content == image.manifest


def test_blob_bytes_lost_from_the_store_come_back_from_upstream(w, tmp_path):
    image = build_image([random_layer(100_000)])
    w.open.push({"v1": image}, "heal/app", tmp_path)
    assert w.get("/v2/quay/heal/app/manifests/v1").status_code == 200
    layer = image.layers[0]
    path = w.server.data_dir / "blobs" / "sha256" / layer.digest[7:9] / layer.digest[7:]
    path.unlink()
    assert w.get(f"/v2/quay/heal/app/blobs/{layer.digest}").content == layer.data
    assert len(w.open.requests("GET", f"/v2/heal/app/blobs/{layer.digest}")) == 2
    assert path.read_bytes() == layer.data


def test_a_digest_pull_caches_only_that_manifest(w, tmp_path):
    children = [build_image(architecture=a) for a in ("amd64", "arm64")]
    index = build_index(children)
    w.open.push({"multi": index}, "bydigest/app", tmp_path)
    r = w.get(f"/v2/quay/bydigest/app/manifests/{children[1].digest}")
    assert r.status_code == 200 and r.content == children[1].manifest
    digests = [d["imageDigest"] for d in w.client().describe_images(repositoryName="quay/bydigest/app")["imageDetails"]]
    assert digests == [children[1].digest]
