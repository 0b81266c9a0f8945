"""The layer API: what a registry proxy uses to push and pull blobs, callable directly."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core import layers, uploads
from ecr_emulator.core.context import Context


@operation("BatchCheckLayerAvailability", write=False)
def batch_check_layer_availability(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    found, failures = layers.check_availability(ctx, p["repositoryName"], p["layerDigests"])
    return {"layers": found, "failures": failures}


@operation("InitiateLayerUpload")
def initiate_layer_upload(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    upload = uploads.initiate(ctx, p["repositoryName"])
    return {"uploadId": upload.id, "partSize": uploads.PART_SIZE}


@operation("UploadLayerPart")
def upload_layer_part(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    last = uploads.upload_part(
        ctx, p["repositoryName"], p["uploadId"], p["partFirstByte"], p["partLastByte"], p["layerPartBlob"]
    )
    return {
        "registryId": ctx.registry_id,
        "repositoryName": p["repositoryName"],
        "uploadId": p["uploadId"],
        "lastByteReceived": last,
    }


@operation("CompleteLayerUpload")
def complete_layer_upload(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    digest = uploads.complete(ctx, p["repositoryName"], p["uploadId"], p["layerDigests"])
    return {
        "registryId": ctx.registry_id,
        "repositoryName": p["repositoryName"],
        "uploadId": p["uploadId"],
        "layerDigest": digest,
    }


@operation("GetDownloadUrlForLayer", write=False)
def get_download_url_for_layer(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    url = layers.download_url(ctx, p["repositoryName"], p["layerDigest"])
    return {"downloadUrl": url, "layerDigest": p["layerDigest"]}
