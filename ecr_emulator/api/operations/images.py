"""Image operations: PutImage, BatchGetImage, BatchDeleteImage, DescribeImages, ListImages."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core.context import Context
from ecr_emulator.core.images import delete, put, query, referrers, storage_class


@operation("PutImage")
def put_image(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    result = put.put_image(
        ctx,
        p["repositoryName"],
        p["imageManifest"].encode("utf-8"),
        media_type=p.get("imageManifestMediaType"),
        tag=p.get("imageTag"),
        digest=p.get("imageDigest"),
    )
    image_id = {"imageDigest": result.image.digest}
    if result.tag is not None:
        image_id["imageTag"] = result.tag
    return {
        "image": {
            "registryId": result.repository.account_id,
            "repositoryName": result.repository.name,
            "imageId": image_id,
            "imageManifest": p["imageManifest"],
            "imageManifestMediaType": result.manifest.media_type,
        }
    }


@operation("BatchGetImage", write=False)
def batch_get_image(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    images, failures, pulled = query.batch_get(
        ctx, p["repositoryName"], p["imageIds"], p.get("acceptedMediaTypes")
    )
    ctx.services.pulls.note(pulled, ctx.now, ctx.principal.entity_arn)
    return {"images": images, "failures": failures}


@operation("BatchDeleteImage")
def batch_delete_image(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    deleted, failures = delete.batch_delete(ctx, p["repositoryName"], p["imageIds"])
    return {"imageIds": deleted, "failures": failures}


@operation("DescribeImages", write=False)
def describe_images(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    details, token = query.describe(
        ctx, p["repositoryName"], p.get("imageIds"), p.get("filter"), p.get("nextToken"), p.get("maxResults")
    )
    return {"imageDetails": details, "nextToken": token}


@operation("ListImages", write=False)
def list_images(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ids, token = query.list_ids(ctx, p["repositoryName"], p.get("filter"), p.get("nextToken"), p.get("maxResults"))
    return {"imageIds": ids, "nextToken": token}


@operation("ListImageReferrers", write=False)
def list_image_referrers(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    found, token = referrers.list_referrers(
        ctx, p["repositoryName"], p["subjectId"]["imageDigest"], p.get("filter"), p.get("nextToken"),
        p.get("maxResults"),
    )
    return {"referrers": found, "nextToken": token}


@operation("UpdateImageStorageClass")
def update_image_storage_class(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    image, image_id = storage_class.update(ctx, p["repositoryName"], p["imageId"], p["targetStorageClass"])
    return {"registryId": ctx.registry_id, "repositoryName": p["repositoryName"], "imageId": image_id,
            "imageStatus": image.status}
