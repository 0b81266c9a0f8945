"""Repository and registry permission policies."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core import policies
from ecr_emulator.core.context import Context


def _repo_out(ctx: Context, p: dict[str, Any], text: str) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "repositoryName": p["repositoryName"], "policyText": text}


@operation("SetRepositoryPolicy")
def set_repository_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _repo_out(ctx, p, policies.set_repository_policy(ctx, p["repositoryName"], p["policyText"],
                                                            bool(p.get("force", False))))


@operation("GetRepositoryPolicy", write=False)
def get_repository_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _repo_out(ctx, p, policies.get_repository_policy(ctx, p["repositoryName"]))


@operation("DeleteRepositoryPolicy")
def delete_repository_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _repo_out(ctx, p, policies.delete_repository_policy(ctx, p["repositoryName"]))


@operation("PutRegistryPolicy")
def put_registry_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "policyText": policies.put_registry_policy(ctx, p["policyText"])}


@operation("GetRegistryPolicy", write=False)
def get_registry_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "policyText": policies.get_registry_policy(ctx)}


@operation("DeleteRegistryPolicy")
def delete_registry_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "policyText": policies.delete_registry_policy(ctx)}
