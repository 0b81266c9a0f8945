"""Pull through cache rules (Create / Describe / Update / Delete / Validate)."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core.context import Context
from ecr_emulator.core.pullthrough import rules, validate


@operation("CreatePullThroughCacheRule")
def create_rule(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return rules.view(rules.create(ctx, p))


@operation("DescribePullThroughCacheRules", write=False)
def describe_rules(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    rows, token = rules.describe(ctx, p.get("ecrRepositoryPrefixes"), p.get("nextToken"), p.get("maxResults"))
    return {"pullThroughCacheRules": [rules.view(r) for r in rows], "nextToken": token}


@operation("UpdatePullThroughCacheRule")
def update_rule(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return rules.view(rules.update(ctx, p))


@operation("DeletePullThroughCacheRule")
def delete_rule(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return rules.delete(ctx, p["ecrRepositoryPrefix"])


@operation("ValidatePullThroughCacheRule", write=False)
def validate_rule(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    row = rules.require(ctx, p["ecrRepositoryPrefix"])
    return {**rules.view(row), **validate.result(ctx, row)}
