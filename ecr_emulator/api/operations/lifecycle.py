"""Lifecycle policies and their previews."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core.context import Context
from ecr_emulator.core.lifecycle import preview, store


@operation("PutLifecyclePolicy")
def put_lifecycle_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    repo = store.put(ctx, p["repositoryName"], p["lifecyclePolicyText"])
    return {"registryId": repo.account_id, "repositoryName": repo.name,
            "lifecyclePolicyText": repo.lifecycle_policy_text}


@operation("GetLifecyclePolicy", write=False)
def get_lifecycle_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    repo = store.get(ctx, p["repositoryName"])
    return {"registryId": repo.account_id, "repositoryName": repo.name,
            "lifecyclePolicyText": repo.lifecycle_policy_text,
            "lastEvaluatedAt": repo.lifecycle_evaluated_at or 0.0}


@operation("DeleteLifecyclePolicy")
def delete_lifecycle_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    text, evaluated = store.delete(ctx, p["repositoryName"])
    return {"registryId": ctx.registry_id, "repositoryName": p["repositoryName"],
            "lifecyclePolicyText": text, "lastEvaluatedAt": evaluated}


@operation("StartLifecyclePolicyPreview")
def start_lifecycle_policy_preview(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    started = preview.start(ctx, p["repositoryName"], p.get("lifecyclePolicyText"))
    return {"registryId": ctx.registry_id, "repositoryName": p["repositoryName"],
            "lifecyclePolicyText": started.policy_text, "status": started.status}


@operation("GetLifecyclePolicyPreview", write=False)
def get_lifecycle_policy_preview(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return preview.get(ctx, p["repositoryName"], p.get("imageIds"), p.get("filter"), p.get("nextToken"),
                       p.get("maxResults"))
