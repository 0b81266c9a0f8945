"""Access control on the registry endpoint: skopeo, podman and raw OCI requests with the tokens of
declared principals of two accounts; the action each route needs; tokens obeying the policy in force."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from tests.errors import oci_error
from tests.iam_world import (
    ADMIN_KEY,
    CI,
    DEPLOYER,
    NOBODY,
    PULL,
    PULLER,
    PUSH_ONLY,
    A,
    B,
    client,
    doc,
    repo_arn,
    start_iam_server,
)
from tests.images import build_image, push_via_api, write_oci_layout
from tests.tools import need, run


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = start_iam_server(tmp_path_factory, "iam-registry")
    yield live
    live.stop()


@pytest.fixture
def admin(server):
    return client(server, ADMIN_KEY)


def password_of(server, who) -> str:
    token = client(server, who).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().split(":", 1)[1]


def session_of(server, who) -> requests.Session:
    s = requests.Session()
    s.auth = ("AWS", password_of(server, who))
    return s


def allow(admin, repo: str, principal: str, actions) -> None:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions}
    admin.set_repository_policy(repositoryName=repo, policyText=json.dumps(doc(statement)))


def check_denied(resp: requests.Response, principal_arn: str, action: str, repo: str) -> None:
    status, code, message = oci_error(resp)
    assert (status, code) == (403, "DENIED"), resp.text
    assert message.startswith(f"User: {principal_arn} is not authorized to perform: {action} on resource: "
                              f"{repo_arn(repo)} because"), message


class Skopeo:
    def __init__(self, server, who, tmp_path: Path) -> None:
        need("skopeo")
        self.server = server
        self.authfile = tmp_path / f"auth-{who.key}.json"
        run("skopeo", "login", "--tls-verify=false", "--authfile", str(self.authfile), "-u", "AWS",
            "--password-stdin", server.registry, input=password_of(server, who))

    def __call__(self, *args: str, fail: bool = False) -> str:
        proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, REGISTRY_AUTH_FILE=str(self.authfile)))
        assert (proc.returncode != 0) == fail, proc.stderr
        return proc.stderr if fail else proc.stdout


@pytest.mark.clients
def test_skopeo_push_is_judged_by_the_identity_policy(server, admin, tmp_path):
    admin.create_repository(repositoryName="app")
    admin.create_repository(repositoryName="other")
    skopeo = Skopeo(server, CI, tmp_path)
    layout = write_oci_layout(tmp_path / "img", {"v1": build_image()})
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{server.registry}/app:v1")
    assert admin.describe_images(repositoryName="app")["imageDetails"][0]["imageTags"] == ["v1"]
    stderr = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{server.registry}/other:v1",
                    fail=True)
    # skopeo's first request is a blob HEAD (ecr:BatchCheckLayerAvailability): a 403 without a body
    assert "other: 403 (Forbidden)" in stderr
    check_denied(session_of(server, CI).get(f"{server.registry_url}/v2/other/tags/list"), CI.arn, "ecr:ListImages",
                 "other")
    assert admin.describe_images(repositoryName="other")["imageDetails"] == []


@pytest.mark.clients
def test_skopeo_cross_account_pull_follows_the_policy_in_force(server, admin, tmp_path):
    admin.create_repository(repositoryName="shared")
    image = build_image()
    push_via_api(admin, "shared", image, "v1")
    skopeo = Skopeo(server, PULLER, tmp_path)  # logged in once: the same token throughout
    ref = f"docker://{server.registry}/shared:v1"
    stderr = skopeo("inspect", "--tls-verify=false", ref, fail=True)
    assert f"{PULLER.arn} is not authorized to perform: ecr:BatchGetImage" in stderr
    allow(admin, "shared", B, PULL)
    skopeo("copy", "--src-tls-verify=false", ref, f"oci:{tmp_path / 'out'}:v1")
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    layout = write_oci_layout(tmp_path / "theirs", {"v2": build_image()})
    stderr = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v2", f"docker://{server.registry}/shared:v2",
                    fail=True)
    assert "because no resource-based policy allows" in stderr
    admin.delete_repository_policy(repositoryName="shared")
    assert "is not authorized" in skopeo("inspect", "--tls-verify=false", ref, fail=True)
    assert [i["imageTag"] for i in admin.list_images(repositoryName="shared")["imageIds"]] == ["v1"]


@pytest.fixture
def podman_as(server, tmp_path):
    need("podman")
    if os.geteuid() != 0:
        pytest.skip("podman tests run as root with the vfs storage driver")
    root = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))
    base = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "none"]

    def login(who):
        authfile = tmp_path / f"podman-{who.key}.json"
        run(*base, "login", "--tls-verify=false", "--authfile", str(authfile), "-u", "AWS", "--password-stdin",
            server.registry, input=password_of(server, who))

        def podman(*args: str, fail: bool = False) -> str:
            proc = subprocess.run([*base, *args], capture_output=True, text=True, timeout=300,
                                  env=dict(os.environ, REGISTRY_AUTH_FILE=str(authfile)))
            assert (proc.returncode != 0) == fail, proc.stderr
            return proc.stderr if fail else proc.stdout

        return podman

    yield login
    subprocess.run([*base, "system", "reset", "--force"], capture_output=True, timeout=120)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.clients
def test_podman_cross_account_pull_allowed_by_repository_policy(server, admin, podman_as):
    admin.create_repository(repositoryName="team/base")
    image = build_image(oci=False)
    push_via_api(admin, "team/base", image, "v1")
    ref = f"{server.registry}/team/base:v1"
    puller = podman_as(PULLER)
    assert "not authorized to perform: ecr:BatchGetImage" in puller("pull", "--tls-verify=false", ref, fail=True)
    allow(admin, "team/base", PULLER.arn, PULL)
    puller("pull", "--tls-verify=false", ref)
    puller("tag", ref, f"{server.registry}/team/base:copy")
    assert "is not authorized" in puller("push", "--tls-verify=false", f"{server.registry}/team/base:copy",
                                         fail=True)
    nobody = podman_as(NOBODY)  # B's policy lets nobody log in, not pull
    assert "because no identity-based policy allows the ecr:BatchGetImage action" in nobody(
        "pull", "--tls-verify=false", ref, fail=True)


def test_each_route_asks_its_own_action(server, admin):
    admin.create_repository(repositoryName="routes")
    image = build_image()
    push_via_api(admin, "routes", image, "v1")
    base = server.registry_url
    s = session_of(server, DEPLOYER)  # B's role may do anything in IAM; A's repository policy decides
    layer = image.layers[0].digest
    role = f"arn:aws:sts::{B}:assumed-role/deploy/pipeline"
    assert s.head(f"{base}/v2/routes/blobs/{layer}").status_code == 403  # HEAD: no body to name the action
    allow(admin, "routes", B, ["ecr:BatchCheckLayerAvailability"])
    assert s.head(f"{base}/v2/routes/blobs/{layer}").status_code == 200
    check_denied(s.get(f"{base}/v2/routes/blobs/{layer}"), role, "ecr:GetDownloadUrlForLayer", "routes")
    check_denied(s.get(f"{base}/v2/routes/manifests/v1"), role, "ecr:BatchGetImage", "routes")
    check_denied(s.get(f"{base}/v2/routes/tags/list"), role, "ecr:ListImages", "routes")
    check_denied(s.post(f"{base}/v2/routes/blobs/uploads/"), role, "ecr:InitiateLayerUpload", "routes")
    allow(admin, "routes", B, ["ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload"])
    assert s.post(f"{base}/v2/routes/blobs/uploads/").status_code == 202
    check_denied(s.post(f"{base}/v2/routes/blobs/uploads/", params={"digest": image.config.digest},
                        data=image.config.data), role, "ecr:UploadLayerPart", "routes")  # monolithic: all three
    check_denied(s.put(f"{base}/v2/routes/manifests/v2", data=image.manifest,
                       headers={"Content-Type": image.media_type}), role, "ecr:PutImage", "routes")
    check_denied(s.delete(f"{base}/v2/routes/manifests/{image.digest}"), role, "ecr:BatchDeleteImage", "routes")
    allow(admin, "routes", B, ["ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage", "ecr:ListImages"])
    assert s.get(f"{base}/v2/routes/blobs/{layer}").content == image.layers[0].data
    assert s.get(f"{base}/v2/routes/manifests/v1").content == image.manifest
    assert s.get(f"{base}/v2/routes/tags/list").json()["tags"] == ["v1"]
    allow(admin, "routes", B, ["ecr:BatchDeleteImage"])
    assert s.delete(f"{base}/v2/routes/manifests/{image.digest}").status_code == 202
    # the catalog lists every repository: repository/* of the registry, which no repository policy covers
    check_denied_catalog = s.get(f"{base}/v2/_catalog")
    assert oci_error(check_denied_catalog)[:2] == (403, "DENIED")
    assert f"on resource: arn:aws:ecr:us-east-1:{A}:repository/* because" in oci_error(check_denied_catalog)[2]


def test_registry_policy_v2_and_v1_on_the_registry(server, admin):
    admin.create_repository(repositoryName="reg")
    image = build_image()
    push_via_api(admin, "reg", image, "v1")
    s = session_of(server, PULLER)
    url = f"{server.registry_url}/v2/reg/manifests/v1"
    check_denied(s.get(url), PULLER.arn, "ecr:BatchGetImage", "reg")
    admin.put_registry_policy(policyText=json.dumps(doc({
        "Effect": "Allow", "Principal": {"AWS": B}, "Action": [*PULL, "ecr:DescribeRepositories"],
        "Resource": [repo_arn("*")]})))
    assert s.get(url).content == image.manifest
    assert s.get(f"{server.registry_url}/v2/_catalog").json()["repositories"] == ["reg"]
    admin.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
    check_denied(s.get(url), PULLER.arn, "ecr:BatchGetImage", "reg")


def test_a_mount_needs_read_on_the_source_else_the_blob_is_uploaded(server, admin):
    admin.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    image = build_image()
    for repo in ("app-a", "app-b", "secret"):
        admin.create_repository(repositoryName=repo)
    push_via_api(admin, "app-b", image, "v1")
    push_via_api(admin, "secret", image, "v1")
    s = session_of(server, CI)  # may read and push app*, not "secret"
    layer = image.layers[0].digest
    upload = f"{server.registry_url}/v2/app-a/blobs/uploads/"
    refused_source = s.post(upload, params={"mount": layer, "from": "secret"})
    assert refused_source.status_code == 202  # not mounted: an ordinary upload starts instead
    assert s.head(f"{server.registry_url}/v2/app-a/blobs/{layer}").status_code == 404
    mounted = s.post(upload, params={"mount": layer, "from": "app-b"})
    assert mounted.status_code == 201, mounted.text
    assert s.head(f"{server.registry_url}/v2/app-a/blobs/{layer}").status_code == 200


def test_a_denied_upload_leaves_nothing_behind(server, admin):
    admin.create_repository(repositoryName="quiet")
    s = session_of(server, PULLER)  # its identity allows InitiateLayerUpload, A's policy does not
    check_denied(s.post(f"{server.registry_url}/v2/quiet/blobs/uploads/", params={"digest": "sha256:" + "0" * 64},
                        data=b"x" * 1024), PULLER.arn, "ecr:InitiateLayerUpload", "quiet")
    assert admin.describe_images(repositoryName="quiet")["imageDetails"] == []
    assert server.control("jobs/run", {})["failed"] == 0


def test_create_on_push_needs_create_repository(server, admin):
    """A CREATE_ON_PUSH template creates the repository only for a pusher allowed
    ecr:CreateRepository on it; others get NAME_UNKNOWN, as if there were no template."""
    admin.create_repository_creation_template(prefix="ROOT", appliedFor=["CREATE_ON_PUSH"])
    try:
        r = session_of(server, PUSH_ONLY).post(f"{server.registry_url}/v2/fresh/one/blobs/uploads/")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        r = session_of(server, CI).post(f"{server.registry_url}/v2/app-fresh/blobs/uploads/")
        assert r.status_code == 202, r.text
        names = [x["repositoryName"] for x in admin.describe_repositories()["repositories"]]
        assert "app-fresh" in names and "fresh/one" not in names
    finally:
        admin.delete_repository_creation_template(prefix="ROOT")
