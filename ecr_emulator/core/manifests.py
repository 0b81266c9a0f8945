"""Reading manifests: media type, the blobs and child manifests they reference, sizes.

The digest of an image is the sha256 of the exact bytes received; nothing is re-serialised.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ecr_emulator.core import errors
from ecr_emulator.core.naming import DIGEST

DOCKER_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

SCHEMA1 = (DOCKER_V1, DOCKER_V1_SIGNED)
IMAGE_MANIFESTS = (DOCKER_V2, OCI_MANIFEST)
INDEXES = (DOCKER_LIST, OCI_INDEX)
SUPPORTED = SCHEMA1 + IMAGE_MANIFESTS + INDEXES

# Layers that live elsewhere (Windows base layers): never uploaded, so never required.
FOREIGN_LAYERS = (
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
)


MAX_SIZE = 2**63  # sizes are signed 64-bit integers in ECR, in the OCI spec and in our tables


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Descriptor:
    media_type: str | None
    digest: str
    size: int
    urls: list[str] = field(default_factory=list)
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None


@dataclass
class Manifest:
    raw: bytes
    digest: str
    media_type: str
    doc: dict[str, Any]
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    children: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES

    @property
    def required_blobs(self) -> list[Descriptor]:
        """Blobs that must already be in the repository before this manifest may be stored."""
        out = [self.config] if self.config is not None else []
        out += [d for d in self.layers if not (d.urls and d.media_type in FOREIGN_LAYERS)]
        return out

    @property
    def declared_size(self) -> int:
        """ECR's imageSizeInBytes for a single-arch manifest: config + every layer, compressed."""
        return (self.config.size if self.config else 0) + sum(d.size for d in self.layers)

    @property
    def artifact_media_type(self) -> str | None:
        if self.is_index:
            return None
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config else None

    @property
    def referrer_artifact_type(self) -> str | None:
        """artifactType as the OCI referrers API reports it (falls back to the config type)."""
        if self.artifact_type:
            return self.artifact_type
        return self.config.media_type if self.config and not self.is_index else None


def _invalid(detail: str) -> errors.InvalidParameterException:
    return errors.InvalidParameterException.constraint("ImageManifest", detail)


def _descriptor(obj: Any, where: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise _invalid(f"Invalid descriptor at {where}")
    digest, size, media_type = obj.get("digest"), obj.get("size"), obj.get("mediaType")
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise _invalid(f"Invalid digest at {where}")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < MAX_SIZE:
        raise _invalid(f"Invalid size at {where}")
    if media_type is not None and not isinstance(media_type, str):
        raise _invalid(f"Invalid mediaType at {where}")
    urls = obj.get("urls") or []
    annotations = obj.get("annotations")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        urls=urls if isinstance(urls, list) else [],
        artifact_type=obj.get("artifactType") if isinstance(obj.get("artifactType"), str) else None,
        annotations=annotations if isinstance(annotations, dict) else None,
        platform=obj.get("platform") if isinstance(obj.get("platform"), dict) else None,
    )


def resolve_media_type(doc: dict[str, Any], declared: str | None) -> str:
    """The manifest's media type: the declared one, else its own ``mediaType`` field.

    Like ECR, a manifest that names no media type anywhere is refused with the (misleading)
    "Invalid JSON syntax" wording, except schema 1 manifests, which never carried the field.
    """
    inner = doc.get("mediaType")
    if inner is not None and not isinstance(inner, str):
        raise _invalid("Invalid JSON syntax")
    if declared and inner and declared != inner:
        raise errors.InvalidParameterException.constraint(
            "imageManifestMediaType",
            f"Manifest MediaType ({inner}) does not match the given imageManifestMediaType ({declared})",
        )
    media_type = declared or inner
    if not media_type:
        if doc.get("schemaVersion") == 1:
            return DOCKER_V1_SIGNED if "signatures" in doc else DOCKER_V1
        raise _invalid("Invalid JSON syntax")
    if media_type not in SUPPORTED:
        raise errors.InvalidParameterException.constraint(
            "imageManifestMediaType", f"Unsupported manifest media type: '{media_type}'"
        )
    return media_type


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def parse(raw: bytes, declared_media_type: str | None = None) -> Manifest:
    try:
        doc = json.loads(raw)
        if b"\\u" in raw:  # an escape may stand for half a surrogate pair, which is no character
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
            if b"\\u0000" in raw and _holds_nul(doc):  # nor may a string hold NUL (no column can)
                raise ValueError("NUL character")
    except (ValueError, UnicodeError, RecursionError) as exc:
        raise _invalid("Invalid JSON syntax") from exc
    if not isinstance(doc, dict):
        raise _invalid("Invalid JSON syntax")
    media_type = resolve_media_type(doc, declared_media_type)
    m = Manifest(raw=raw, digest=sha256_digest(raw), media_type=media_type, doc=doc)

    if media_type in SCHEMA1:
        if doc.get("schemaVersion") != 1 or not isinstance(doc.get("fsLayers"), list):
            raise _invalid("Invalid schema 1 manifest")
        for i, layer in enumerate(doc["fsLayers"]):
            digest = layer.get("blobSum") if isinstance(layer, dict) else None
            if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
                raise _invalid(f"Invalid digest at fsLayers[{i}].blobSum")
            m.layers.append(Descriptor(media_type=None, digest=digest, size=0))
        return m

    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    if isinstance(doc.get("artifactType"), str):
        m.artifact_type = doc["artifactType"]
    if isinstance(doc.get("annotations"), dict):
        m.annotations = doc["annotations"]
    if doc.get("subject") is not None:
        if media_type not in (OCI_MANIFEST, OCI_INDEX):
            raise _invalid("subject is only allowed in OCI manifests and indexes")
        m.subject = _descriptor(doc["subject"], "subject")

    if media_type in INDEXES:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise _invalid("manifests must be a list")
        m.children = [_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)]
        return m

    m.config = _descriptor(doc.get("config"), "config")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise _invalid("layers must be a list")
    if media_type == DOCKER_V2 and not layers:
        raise _invalid("layers must not be empty")
    m.layers = [_descriptor(d, f"layers[{i}]") for i, d in enumerate(layers)]
    return m
