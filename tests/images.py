"""Build real images without a Docker engine: gzip'd tar layers, a config, a manifest.

Images can be pushed through the ECR layer API + PutImage (boto3), through the registry
protocol (raw HTTP), or written as an OCI layout directory for skopeo/podman/oras to push.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Blob:
    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass
class Image:
    manifest: bytes
    media_type: str
    blobs: list[Blob] = field(default_factory=list)  # config first, then layers
    children: list[Image] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    @property
    def config(self) -> Blob | None:
        return self.blobs[0] if self.blobs else None

    @property
    def layers(self) -> list[Blob]:
        return self.blobs[1:]

    @property
    def size(self) -> int:
        if self.children:
            return max(c.size for c in self.children)
        return sum(b.size for b in self.blobs)


def tar_layer(files: dict[str, bytes | None], *, compress: bool = True) -> bytes:
    """A layer tarball; a value of None writes an OCI whiteout for that path."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            if content is None:
                head, _, tail = path.rpartition("/")
                info = tarfile.TarInfo(f"{head}/.wh.{tail}" if head else f".wh.{tail}")
                info.size = 0
                tar.addfile(info, io.BytesIO(b""))
                continue
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def random_layer(size: int = 2048, seed: str = "") -> bytes:
    return tar_layer({f"data/{seed or os.urandom(4).hex()}.bin": os.urandom(size)})


def build_image(
    layers: list[bytes] | None = None,
    *,
    oci: bool = True,
    architecture: str = "amd64",
    os_name: str = "linux",
    label: str | None = None,
    annotations: dict[str, str] | None = None,
) -> Image:
    layers = layers if layers is not None else [random_layer()]
    diff_ids = [sha(gzip.decompress(layer)) for layer in layers]
    config = {
        "architecture": architecture,
        "os": os_name,
        "config": {"Labels": {"test": label or os.urandom(6).hex()}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "tests/images.py"} for _ in layers],
    }
    config_blob = Blob(json.dumps(config).encode(), OCI_CONFIG if oci else DOCKER_CONFIG)
    layer_blobs = [Blob(layer, OCI_LAYER if oci else DOCKER_LAYER) for layer in layers]
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [b.descriptor() for b in layer_blobs],
    }
    if annotations:
        manifest["annotations"] = annotations
    raw = json.dumps(manifest, indent=2).encode()
    return Image(raw, manifest["mediaType"], [config_blob, *layer_blobs])


def build_index(children: list[Image], *, oci: bool = True, platforms: list[tuple[str, str]] | None = None) -> Image:
    platforms = platforms or [("linux", a) for a in ("amd64", "arm64", "ppc64le", "s390x")][: len(children)]
    manifests = []
    for child, (os_name, arch) in zip(children, platforms, strict=True):
        manifests.append({
            "mediaType": child.media_type,
            "digest": child.digest,
            "size": len(child.manifest),
            "platform": {"os": os_name, "architecture": arch},
        })
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX if oci else DOCKER_LIST, "manifests": manifests}
    return Image(json.dumps(doc, indent=2).encode(), doc["mediaType"], [], children)


def build_artifact(subject: Image, artifact_type: str, payload: bytes, annotations: dict | None = None) -> Image:
    """An OCI 1.1 artifact (signature, SBOM...) referring to ``subject``."""
    empty = Blob(b"{}", EMPTY_CONFIG)
    layer = Blob(payload, "application/octet-stream")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty.descriptor(),
        "layers": [layer.descriptor()],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.manifest)},
    }
    if annotations:
        doc["annotations"] = annotations
    return Image(json.dumps(doc).encode(), OCI_MANIFEST, [empty, layer])


# ---- pushing ----


def upload_blob_via_api(ecr, repo: str, blob: Blob, part_size: int = 5 * 1024 * 1024) -> None:
    avail = ecr.batch_check_layer_availability(repositoryName=repo, layerDigests=[blob.digest])
    if avail["layers"]:
        return
    upload_id = ecr.initiate_layer_upload(repositoryName=repo)["uploadId"]
    for start in range(0, max(blob.size, 1), part_size):
        part = blob.data[start : start + part_size]
        ecr.upload_layer_part(repositoryName=repo, uploadId=upload_id, partFirstByte=start,
                              partLastByte=start + len(part) - 1, layerPartBlob=part)
    ecr.complete_layer_upload(repositoryName=repo, uploadId=upload_id, layerDigests=[blob.digest])


def push_via_api(ecr, repo: str, image: Image, tag: str | None = None) -> dict:
    for child in image.children:
        push_via_api(ecr, repo, child)
    for blob in image.blobs:
        upload_blob_via_api(ecr, repo, blob)
    kwargs = {"repositoryName": repo, "imageManifest": image.manifest.decode(),
              "imageManifestMediaType": image.media_type}
    if tag:
        kwargs["imageTag"] = tag
    return ecr.put_image(**kwargs)["image"]


def push_in_process(ctx, repo: str, blobs: list[tuple[bytes, str]], tag: str):  # type: ignore[no-untyped-def]
    """Create ``repo`` and push an OCI image of ``blobs`` ((bytes, media type), the config first)
    through ``core`` in the unit of work ``ctx``, as the ECR layer API pushes: one part a blob.
    Returns put_image's result."""
    from ecr_emulator.core import repositories, uploads
    from ecr_emulator.core.images import put

    repositories.create(ctx, repo)
    descriptors = []
    for data, media_type in blobs:
        upload = uploads.initiate(ctx, repo)
        uploads.upload_part(ctx, repo, upload.id, 0, len(data) - 1, data)
        digest = uploads.complete(ctx, repo, upload.id, [sha(data)])
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(data)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": descriptors[0], "layers": descriptors[1:]}).encode()
    return put.put_image(ctx, repo, manifest, tag=tag)


def store_in_process(ctx, repo: str, image: Image, tag: str | None = None):  # type: ignore[no-untyped-def]
    """Store ``image`` in the existing repository ``repo`` through ``core`` in the unit of work
    ``ctx``: its blobs placed and linked as an upload's commit would, then put_image. Returns
    put_image's result."""
    from ecr_emulator.core import repositories, uploads
    from ecr_emulator.core.images import put

    target = repositories.get(ctx, repo)
    blobs = ctx.services.blobs
    for blob in image.blobs:
        upload_id = "u-" + blob.digest[7:19]
        blobs.place(upload_id, blobs.staging.append(upload_id, [], [blob.data]), blob.digest)
        uploads.link_blob(ctx, target, blob.digest, blob.size)
    return put.put_image(ctx, repo, image.manifest, tag=tag)


def basic_auth(ecr) -> str:
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return f"Basic {token}"


def login_password(ecr) -> str:
    """The registry password of ``ecr``'s caller, as ``aws ecr get-login-password`` prints it."""
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().split(":", 1)[1]


def push_with_skopeo(ecr, reference: str, workdir: Path, cert_dir: Path | None = None) -> tuple[Image, dict]:
    """Log in as ``ecr``'s caller and copy a fresh one-layer image to ``docker://<reference>`` with
    skopeo, over plain HTTP or trusting the CA in ``cert_dir``. Returns the image and the
    environment naming the auth file, for further skopeo calls."""
    from tests.tools import run

    image = build_image()
    layout = write_oci_layout(workdir / "src", {"v1": image})
    auth = {"REGISTRY_AUTH_FILE": str(workdir / "auth.json")}
    trust = ["--cert-dir", str(cert_dir)] if cert_dir else ["--tls-verify=false"]
    run("skopeo", "login", *trust, "-u", "AWS", "--password-stdin", reference.split("/", 1)[0],
        input=login_password(ecr), env=auth)
    trust = ["--dest-cert-dir", str(cert_dir)] if cert_dir else ["--dest-tls-verify=false"]
    run("skopeo", "copy", *trust, f"oci:{layout}:v1", f"docker://{reference}", env=auth)
    return image, auth


def registry_session(ecr) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = basic_auth(ecr)
    return s


def push_via_registry(session: requests.Session, base: str, repo: str, image: Image, tag: str | None = None) -> str:
    for child in image.children:
        push_via_registry(session, base, repo, child)
    for blob in image.blobs:
        if session.head(f"{base}/v2/{repo}/blobs/{blob.digest}").status_code == 200:
            continue
        r = session.post(f"{base}/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        url = location if location.startswith("http") else base + location
        r = session.put(url, params={"digest": blob.digest}, data=blob.data,
                        headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
    ref = tag or image.digest
    r = session.put(f"{base}/v2/{repo}/manifests/{ref}", data=image.manifest,
                    headers={"Content-Type": image.media_type})
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


# ---- OCI layout on disk (for skopeo / podman / oras) ----


def write_oci_layout(path: Path, images: dict[str, Image]) -> Path:
    """Write ``images`` (tag -> image) as an OCI image layout directory."""
    blobs_dir = path / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def put(data: bytes) -> None:
        (blobs_dir / sha(data).split(":", 1)[1]).write_bytes(data)

    def store(image: Image) -> None:
        for child in image.children:
            store(child)
        for blob in image.blobs:
            put(blob.data)
        put(image.manifest)

    manifests = []
    for tag, image in images.items():
        store(image)
        manifests.append({
            "mediaType": image.media_type,
            "digest": image.digest,
            "size": len(image.manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })
    (path / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                  "manifests": manifests}))
    return path


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
