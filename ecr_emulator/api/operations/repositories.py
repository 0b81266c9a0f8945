"""Repository operations."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core import repositories, resource_tags
from ecr_emulator.core.context import Context


@operation("CreateRepository")
def create_repository(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    repo = repositories.create(
        ctx,
        p["repositoryName"],
        tags=p.get("tags"),
        mutability=p.get("imageTagMutability"),
        mutability_filters=p.get("imageTagMutabilityExclusionFilters"),
        scanning=p.get("imageScanningConfiguration"),
        encryption=p.get("encryptionConfiguration"),
    )
    return {"repository": repositories.view(ctx, repo)}


@operation("DescribeRepositories", write=False)
def describe_repositories(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    repos, token = repositories.describe(ctx, p.get("repositoryNames"), p.get("nextToken"), p.get("maxResults"))
    return {"repositories": [repositories.view(ctx, r) for r in repos], "nextToken": token}


@operation("DeleteRepository")
def delete_repository(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"repository": repositories.delete(ctx, p["repositoryName"], bool(p.get("force", False)))}


@operation("PutImageTagMutability")
def put_image_tag_mutability(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    repo = repositories.put_tag_mutability(
        ctx, p["repositoryName"], p["imageTagMutability"], p.get("imageTagMutabilityExclusionFilters")
    )
    out = {
        "registryId": repo.account_id,
        "repositoryName": repo.name,
        "imageTagMutability": repo.tag_mutability,
    }
    if repo.tag_mutability_filters:
        out["imageTagMutabilityExclusionFilters"] = repo.tag_mutability_filters
    return out


@operation("PutImageScanningConfiguration")
def put_image_scanning_configuration(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    repo = repositories.put_scanning_configuration(
        ctx, p["repositoryName"], bool(p["imageScanningConfiguration"].get("scanOnPush", False))
    )
    return {
        "registryId": repo.account_id,
        "repositoryName": repo.name,
        "imageScanningConfiguration": {"scanOnPush": repo.scan_on_push},
    }


@operation("TagResource")
def tag_resource(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    resource_tags.tag(ctx, p["resourceArn"], p["tags"])
    return {}


@operation("UntagResource")
def untag_resource(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    resource_tags.untag(ctx, p["resourceArn"], p["tagKeys"])
    return {}


@operation("ListTagsForResource", write=False)
def list_tags_for_resource(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"tags": resource_tags.list_for(ctx, p["resourceArn"])}
