"""Pull-time update exclusions (Register / Deregister / List)."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core import pull_exclusions
from ecr_emulator.core.context import Context


@operation("RegisterPullTimeUpdateExclusion")
def register(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    row = pull_exclusions.register(ctx, p["principalArn"])
    return {"principalArn": row.principal_arn, "createdAt": row.created_at}


@operation("DeregisterPullTimeUpdateExclusion")
def deregister(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    pull_exclusions.deregister(ctx, p["principalArn"])
    return {"principalArn": p["principalArn"]}


@operation("ListPullTimeUpdateExclusions", write=False)
def list_exclusions(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    arns, token = pull_exclusions.listed(ctx, p.get("nextToken"), p.get("maxResults"))
    return {"pullTimeUpdateExclusions": arns, "nextToken": token}
