"""Repository creation templates (Create / Describe / Update / Delete)."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core import templates
from ecr_emulator.core.context import Context


def _out(ctx: Context, template: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ctx.registry_id, "repositoryCreationTemplate": template}


@operation("CreateRepositoryCreationTemplate")
def create_template(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _out(ctx, templates.view(templates.create(ctx, p)))


@operation("UpdateRepositoryCreationTemplate")
def update_template(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _out(ctx, templates.view(templates.update(ctx, p)))


@operation("DeleteRepositoryCreationTemplate")
def delete_template(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return _out(ctx, templates.delete(ctx, p["prefix"]))


@operation("DescribeRepositoryCreationTemplates", write=False)
def describe_templates(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    rows, token = templates.describe(ctx, p.get("prefixes"), p.get("nextToken"), p.get("maxResults"))
    return {"registryId": ctx.registry_id, "repositoryCreationTemplates": [templates.view(r) for r in rows],
            "nextToken": token}
