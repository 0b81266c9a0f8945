"""Manifest format conversion for clients that do not accept the stored format (ECR 4.4).

ECR serves the stored bytes whenever the client accepts their media type. Otherwise it
converts between OCI and Docker schema 2, which is a mechanical renaming of media types for
container images. Converted manifests have their own digest. Not converted: to Docker
schema 1 (it needs a signing key and v1 history that modern clients no longer use), OCI
artifacts whose config is not an image config, and zstd layers (schema 2 has no such type).
"""

from __future__ import annotations

import json

from ecr_emulator.core import manifests

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_TO_DOCKER_LAYER = {
    "application/vnd.oci.image.layer.v1.tar+gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip":
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
DOCKER_TO_OCI_LAYER = {v: k for k, v in OCI_TO_DOCKER_LAYER.items()}


def for_accepted(
    raw: bytes, media_type: str, accepted: list[str] | None, digest: str | None = None
) -> tuple[bytes, str, str] | None:
    """(bytes, media type, digest) to serve, or None when no accepted format can be produced.
    ``digest`` is the stored manifest's, when the caller knows it."""
    if not accepted or media_type in accepted or "*/*" in accepted:
        return raw, media_type, digest or manifests.sha256_digest(raw)
    for target in accepted:
        converted = _convert(raw, media_type, target)
        if converted is not None:
            return converted, target, manifests.sha256_digest(converted)
    return None


def _convert(raw: bytes, source: str, target: str) -> bytes | None:
    doc = json.loads(raw)
    if source == manifests.OCI_MANIFEST and target == manifests.DOCKER_V2:
        return _rename(doc, target, {OCI_CONFIG: DOCKER_CONFIG}, OCI_TO_DOCKER_LAYER, drop_oci_fields=True)
    if source == manifests.DOCKER_V2 and target == manifests.OCI_MANIFEST:
        return _rename(doc, target, {DOCKER_CONFIG: OCI_CONFIG}, DOCKER_TO_OCI_LAYER, drop_oci_fields=False)
    if source == manifests.DOCKER_LIST and target == manifests.OCI_INDEX:
        out = dict(doc, mediaType=target)
        return _dump(out)
    return None


def _rename(
    doc: dict, target: str, configs: dict[str, str], layers: dict[str, str], drop_oci_fields: bool
) -> bytes | None:
    config = doc.get("config") or {}
    if config.get("mediaType") not in configs:
        return None  # an artifact, not a container image
    new_layers = []
    for layer in doc.get("layers", []):
        if layer.get("mediaType") not in layers:
            return None
        new_layers.append(dict(layer, mediaType=layers[layer["mediaType"]]))
    out = {
        "schemaVersion": 2,
        "mediaType": target,
        "config": dict(config, mediaType=configs[config["mediaType"]]),
        "layers": new_layers,
    }
    if not drop_oci_fields and doc.get("annotations"):
        out["annotations"] = doc["annotations"]
    return _dump(out)


def _dump(doc: dict) -> bytes:
    return json.dumps(doc, indent=3).encode()
