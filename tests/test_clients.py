"""Real registry clients against the live registry endpoint: skopeo, podman, oras (and umoci
building an image), logging in with `aws ecr get-login-password` as users do."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.images import (
    OCI_INDEX,
    build_image,
    build_index,
    push_via_registry,
    random_layer,
    tar_layer,
    write_oci_layout,
)
from tests.server import eventually
from tests.tools import need, podman_logged_in, run

pytestmark = pytest.mark.clients


def test_skopeo_push_inspect_pull_roundtrip(skopeo, server, ecr, tmp_path):
    ecr.create_repository(repositoryName="my-app/api")
    image = build_image([random_layer(200_000), random_layer(1000)])
    layout = write_oci_layout(tmp_path / "src", {"v1": image})
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{server.registry}/my-app/api:v1")
    detail = ecr.describe_images(repositoryName="my-app/api")["imageDetails"][0]
    assert detail["imageDigest"] == image.digest  # skopeo kept the exact manifest bytes
    assert detail["imageTags"] == ["v1"] and detail["imageSizeInBytes"] == image.size
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{server.registry}/my-app/api:v1"))
    assert inspected["Digest"] == image.digest
    assert inspected["Layers"] == [b.digest for b in image.layers]
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{server.registry}/my-app/api:v1")
    assert raw.encode() == image.manifest
    skopeo("copy", "--src-tls-verify=false", f"docker://{server.registry}/my-app/api:v1", f"oci:{tmp_path / 'dst'}:v1")
    index = json.loads((tmp_path / "dst" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    for blob in image.blobs:
        assert (tmp_path / "dst" / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes() == blob.data
    tags = json.loads(skopeo("list-tags", "--tls-verify=false", f"docker://{server.registry}/my-app/api"))
    assert tags["Tags"] == ["v1"]
    eventually(lambda: ecr.describe_images(repositoryName="my-app/api")["imageDetails"][0].get("lastRecordedPullTime"))


def test_skopeo_copy_all_multi_arch(skopeo, server, ecr, tmp_path):
    ecr.create_repository(repositoryName="multi")
    children = [build_image(architecture=a) for a in ("amd64", "arm64")]
    index = build_index(children)
    layout = write_oci_layout(tmp_path / "src", {"latest": index})
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout}:latest",
           f"docker://{server.registry}/multi:latest")
    details = {d["imageDigest"]: d for d in ecr.describe_images(repositoryName="multi")["imageDetails"]}
    assert set(details) == {index.digest, *(c.digest for c in children)}
    assert details[index.digest]["imageManifestMediaType"] == OCI_INDEX
    assert details[index.digest]["imageTags"] == ["latest"]
    skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{server.registry}/multi:latest",
           f"oci:{tmp_path / 'back'}:latest")
    back = json.loads((tmp_path / "back" / "index.json").read_text())
    assert back["manifests"][0]["digest"] == index.digest
    # pulling one platform by digest
    skopeo("copy", "--src-tls-verify=false", f"docker://{server.registry}/multi@{children[1].digest}",
           f"oci:{tmp_path / 'one'}:arm")


def test_skopeo_delete_and_immutable_rejection(skopeo, server, ecr, tmp_path):
    ecr.create_repository(repositoryName="imm", imageTagMutability="IMMUTABLE")
    a, b = build_image(), build_image()
    layout = write_oci_layout(tmp_path / "src", {"a": a, "b": b})
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:a", f"docker://{server.registry}/imm:v1")
    stderr = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:b", f"docker://{server.registry}/imm:v1",
                    fail=True)
    assert "already exists in the 'imm' repository and cannot be overwritten" in stderr
    skopeo("delete", "--tls-verify=false", f"docker://{server.registry}/imm@{a.digest}")
    assert ecr.describe_images(repositoryName="imm")["imageDetails"] == []


def test_skopeo_push_to_missing_repository_fails_name_unknown(skopeo, server, tmp_path):
    layout = write_oci_layout(tmp_path / "src", {"v1": build_image()})
    stderr = skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{server.registry}/nope:v1",
                    fail=True)
    assert "The repository with name 'nope' does not exist in the registry with id '123456789012'" in stderr


def test_skopeo_without_login_is_refused(server, ecr, tmp_path):
    need("skopeo")
    ecr.create_repository(repositoryName="locked")
    layout = write_oci_layout(tmp_path / "src", {"v1": build_image()})
    proc = subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{server.registry}/locked:v1"],
        capture_output=True, text=True, env=dict(os.environ, REGISTRY_AUTH_FILE=str(tmp_path / "none.json")),
        timeout=300,
    )
    assert proc.returncode != 0
    assert "unauthorized" in proc.stderr.lower() or "authentication required" in proc.stderr.lower()


@pytest.fixture
def podman(server, login_password, tmp_path):
    with podman_logged_in(server.registry, login_password, tmp_path) as podman_:
        yield podman_


def test_podman_pull_and_push(podman, reg, server, ecr):
    ecr.create_repository(repositoryName="my-app/api")
    ecr.create_repository(repositoryName="copy")
    # a Docker schema 2 image, pushed over the wire by the test's own client
    image = build_image([tar_layer({"etc/hello.txt": b"hello from ecr-emulator\n"})], oci=False)
    push_via_registry(reg, server.registry_url, "my-app/api", image, "v1")
    podman("pull", "--tls-verify=false", f"{server.registry}/my-app/api@{image.digest}")
    podman("pull", "--tls-verify=false", f"{server.registry}/my-app/api:v1")
    images = json.loads(podman("images", "--format", "json"))
    assert any(f"{server.registry}/my-app/api:v1" in (i.get("Names") or []) for i in images)
    podman("tag", f"{server.registry}/my-app/api:v1", f"{server.registry}/copy:pushed")
    podman("push", "--tls-verify=false", f"{server.registry}/copy:pushed")
    pushed = ecr.describe_images(repositoryName="copy")["imageDetails"][0]
    assert pushed["imageTags"] == ["pushed"]
    # podman recompresses layers on push; whatever it sent is what the manifest names
    manifest = json.loads(ecr.batch_get_image(repositoryName="copy", imageIds=[{"imageTag": "pushed"}])
                          ["images"][0]["imageManifest"])
    wanted = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    layers = ecr.batch_check_layer_availability(repositoryName="copy", layerDigests=wanted)["layers"]
    assert sorted(layer["layerDigest"] for layer in layers) == sorted(wanted)
    assert pushed["imageSizeInBytes"] == manifest["config"]["size"] + sum(x["size"] for x in manifest["layers"])
    eventually(lambda: "lastRecordedPullTime" in ecr.describe_images(repositoryName="my-app/api")["imageDetails"][0])


@pytest.fixture
def oras_client(server, login_password):
    try:
        import oras.client
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("oras-py not installed")
    client = oras.client.OrasClient(hostname=server.registry, insecure=True, auth_backend="basic")
    client.login(username="AWS", password=login_password, hostname=server.registry, tls_verify=False)
    return client


@pytest.mark.parametrize("chunked", [False, True])
def test_oras_push_and_pull_artifact(oras_client, server, ecr, tmp_path, chunked):
    ecr.create_repository(repositoryName="artifacts")
    payload = tmp_path / "sbom.spdx.json"
    payload.write_text(json.dumps({"spdxVersion": "SPDX-2.3", "name": "demo"}))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        oras_client.push(files=[payload.name], target=f"{server.registry}/artifacts:sbom", do_chunked=chunked,
                         chunk_size=64)
    finally:
        os.chdir(cwd)
    detail = ecr.describe_images(repositoryName="artifacts")["imageDetails"][0]
    assert detail["imageTags"] == ["sbom"]
    assert detail["imageManifestMediaType"] == "application/vnd.oci.image.manifest.v1+json"
    out = tmp_path / "out"
    files = oras_client.pull(target=f"{server.registry}/artifacts:sbom", outdir=str(out))
    assert [Path(f).read_text() for f in files] == [payload.read_text()]
    manifest = oras_client.get_manifest(f"{server.registry}/artifacts:sbom")
    assert manifest["layers"][0]["annotations"]["org.opencontainers.image.title"] == payload.name


def test_umoci_built_image_pushes(skopeo, server, ecr, tmp_path):
    need("umoci")
    layout = tmp_path / "umoci"
    run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", f"{layout}:base")
    rootfs = tmp_path / "files"
    (rootfs / "app").mkdir(parents=True)
    (rootfs / "app" / "main.py").write_text("print('hi')\n")
    run("umoci", "insert", "--rootless", "--image", f"{layout}:base", str(rootfs / "app"), "/app")
    run("umoci", "config", "--image", f"{layout}:base", "--config.cmd", "python3 /app/main.py")
    ecr.create_repository(repositoryName="umoci")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:base", f"docker://{server.registry}/umoci:base")
    detail = ecr.describe_images(repositoryName="umoci")["imageDetails"][0]
    index = json.loads((layout / "index.json").read_text())
    assert detail["imageDigest"] == index["manifests"][0]["digest"]
    assert detail["imageSizeInBytes"] > 0
