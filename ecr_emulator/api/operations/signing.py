"""Managed signing: the registry's signing configuration and each image's signing statuses."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core.context import Context
from ecr_emulator.core.signing import config, flow


@operation("PutSigningConfiguration")
def put_signing_configuration(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"signingConfiguration": config.put(ctx, p["signingConfiguration"])}


@operation("GetSigningConfiguration", write=False)
def get_signing_configuration(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "signingConfiguration": config.get(ctx)}


@operation("DeleteSigningConfiguration")
def delete_signing_configuration(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "signingConfiguration": config.delete(ctx)}


@operation("DescribeImageSigningStatus", write=False)
def describe_image_signing_status(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return flow.statuses(ctx, p["repositoryName"], p["imageId"])
