"""Repository creation templates, and the repositories ECR creates with them.

A template holds the settings of repositories that ECR creates on the user's behalf: for
replication (``REPLICATION``), for a pull through cache (``PULL_THROUGH_CACHE``) and when a
push names a repository that does not exist (``CREATE_ON_PUSH``). Its prefix has an implied
trailing ``/`` (``prod`` covers ``prod/api``, not ``production`` nor ``prod`` itself); when
several match, the longest prefix wins; ``ROOT`` covers every name no other template covers.
A repository created by CreateRepository never uses a template.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from sqlalchemy import bindparam, select

from ecr_emulator.core import access, errors, pagination, policies, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.lifecycle.policy import parse as parse_lifecycle
from ecr_emulator.storage.models import CreationTemplate, Repository
from ecr_emulator.storage.prepared import Prepared, columns

ROOT = "ROOT"
APPLIED_FOR = ("REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")


def key_of(prefix: str) -> str:
    """The prefix as stored and compared: ``prod/`` and ``prod`` are one template."""
    return prefix if prefix == ROOT else prefix.rstrip("/")


def _find(ctx: Context, prefix: str) -> CreationTemplate | None:
    return ctx.session.get(CreationTemplate, (ctx.scope.account_id, ctx.scope.region, key_of(prefix)))


def _require(ctx: Context, prefix: str) -> CreationTemplate:
    row = _find(ctx, prefix)
    if row is None:
        raise errors.TemplateNotFoundException(
            f"The repository creation template with prefix '{prefix}' does not exist in the registry with id "
            f"'{ctx.registry_id}'"
        )
    return row


def view(row: CreationTemplate) -> dict[str, Any]:
    """The ECR ``RepositoryCreationTemplate`` structure."""
    out: dict[str, Any] = {
        "prefix": row.prefix,
        "encryptionConfiguration": {"encryptionType": row.encryption_type},
        "resourceTags": row.resource_tags,
        "imageTagMutability": row.tag_mutability,
        "appliedFor": row.applied_for,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }
    if row.kms_key:
        out["encryptionConfiguration"]["kmsKey"] = row.kms_key
    for name, value in (("description", row.description), ("repositoryPolicy", row.repository_policy),
                        ("lifecyclePolicy", row.lifecycle_policy), ("customRoleArn", row.custom_role_arn),
                        ("imageTagMutabilityExclusionFilters", row.tag_mutability_filters)):
        if value:
            out[name] = value
    return out


def _apply(row: CreationTemplate, p: dict[str, Any], creating: bool) -> None:
    """Validate and set the fields ``p`` names (all of them when creating)."""

    def given(name: str) -> bool:
        return creating or name in p

    if given("appliedFor"):
        applied = list(dict.fromkeys(p.get("appliedFor") or []))
        if not applied:
            raise errors.InvalidParameterException.constraint(
                "appliedFor", "appliedFor must name at least one of REPLICATION, PULL_THROUGH_CACHE, CREATE_ON_PUSH")
        row.applied_for = applied
    if given("description"):
        row.description = p.get("description") or None
    if given("imageTagMutability") or given("imageTagMutabilityExclusionFilters"):
        mode = p.get("imageTagMutability", row.tag_mutability if not creating else None) or "MUTABLE"
        filters = p.get("imageTagMutabilityExclusionFilters",
                        row.tag_mutability_filters if not creating else None)
        row.tag_mutability_filters = repositories.check_mutability(mode, filters)
        row.tag_mutability = mode
    if given("encryptionConfiguration"):
        config = p.get("encryptionConfiguration") or {"encryptionType": "AES256"}
        etype, key = config["encryptionType"], config.get("kmsKey") or None
        if etype == "AES256" and key:
            raise errors.InvalidParameterException.constraint(
                "encryptionConfiguration.kmsKey", "kmsKey can only be specified when encryptionType is KMS or KMS_DSSE")
        row.encryption_type, row.kms_key = etype, key
    if given("resourceTags"):
        tags = p.get("resourceTags") or []
        repositories.check_resource_tags(tags)
        row.resource_tags = [{"Key": t["Key"], "Value": t["Value"]} for t in tags]
    if given("repositoryPolicy"):
        text = p.get("repositoryPolicy") or None
        row.repository_policy = policies.pretty(policies.validate(text, "repository")[0]) if text else None
    if given("lifecyclePolicy"):
        text = p.get("lifecyclePolicy") or None
        row.lifecycle_policy = parse_lifecycle(text).text if text else None
    if given("customRoleArn"):
        role = p.get("customRoleArn") or None
        if role is not None and not ROLE_ARN.fullmatch(role):
            raise errors.InvalidParameterException.constraint(
                "customRoleArn", f"Invalid IAM role ARN '{role}': expected arn:aws:iam::<account>:role/<name>")
        row.custom_role_arn = role
    if (row.resource_tags or row.kms_key) and not row.custom_role_arn:
        # ECR creates such repositories as the template's role, which must be able to tag and use KMS.
        raise errors.InvalidParameterException.constraint(
            "customRoleArn", "A custom role is required when the template applies resource tags or a KMS key")


def create(ctx: Context, p: dict[str, Any]) -> CreationTemplate:
    prefix = p["prefix"]
    if _find(ctx, prefix) is not None:
        raise errors.TemplateAlreadyExistsException(
            f"The repository creation template with prefix '{prefix}' already exists in the registry with id "
            f"'{ctx.registry_id}'"
        )
    row = CreationTemplate(account_id=ctx.scope.account_id, region=ctx.scope.region, key=key_of(prefix),
                           prefix=prefix, created_at=ctx.now, updated_at=ctx.now, resource_tags=[],
                           encryption_type="AES256", tag_mutability="MUTABLE")
    _apply(row, p, creating=True)
    ctx.session.add(row)
    ctx.session.flush()
    return row


def update(ctx: Context, p: dict[str, Any]) -> CreationTemplate:
    row = _require(ctx, p["prefix"])
    _apply(row, p, creating=False)
    row.updated_at = ctx.now
    ctx.session.flush()
    return row


def delete(ctx: Context, prefix: str) -> dict[str, Any]:
    row = _require(ctx, prefix)
    out = view(row)
    ctx.session.delete(row)
    return out


def describe(ctx: Context, prefixes: list[str] | None, next_token: str | None,
             max_results: int | None) -> tuple[list[CreationTemplate], str | None]:
    stmt = select(CreationTemplate).where(CreationTemplate.account_id == ctx.scope.account_id,
                                          CreationTemplate.region == ctx.scope.region)
    if prefixes:
        stmt = stmt.where(CreationTemplate.key.in_([key_of(p) for p in prefixes]))
    return pagination.page_by_keys(ctx, stmt, [CreationTemplate.key], next_token, max_results,
                                   "DescribeRepositoryCreationTemplates", lambda row: [row.key])


def matching(ctx: Context, name: str, scenario: str) -> CreationTemplate | None:
    """The template that applies when ECR creates repository ``name`` for ``scenario``: the longest
    prefix covering the name, else ROOT."""
    return next((row for row in covering(ctx, CreationTemplate, name) if scenario in row.applied_for), None)


def covering(ctx: Context, model: Any, name: str) -> list[Any]:
    """Rows of ``model`` (a table of the registry's prefixes: creation templates, pull through cache
    rules) whose prefix covers ``name``, the longest first, ROOT last. A prefix has an implied
    trailing ``/``: ``a/b`` covers ``a/b/c``, not ``a/bc`` nor ``a/b`` itself."""
    parts = name.split("/")
    candidates = ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)] + [ROOT]
    found = _covering(model).objects(ctx.session, model, {"account": ctx.scope.account_id,
                                                          "region": ctx.scope.region, "keys": candidates})
    rows = {row.key: row for row in found}
    return [rows[key] for key in candidates if key in rows]


@functools.cache
def _covering(model: Any) -> Prepared:
    """Built once per table: every pull from a repository that misses (and so every push's first
    look at its tag) asks whether a pull through cache rule covers the name."""
    return Prepared(select(*columns(model)).where(
        model.account_id == bindparam("account"), model.region == bindparam("region"),
        model.key.in_(bindparam("keys", expanding=True))))


def create_repository(ctx: Context, name: str, scenario: str) -> Repository:
    """Create ``name`` as ECR does on the user's behalf: with the matching template's settings,
    else ECR's defaults (mutable tags, AES256, no policies, no tags)."""
    row = matching(ctx, name, scenario)
    if row is None:
        return repositories.create(ctx, name)
    encryption = {"encryptionType": row.encryption_type, **({"kmsKey": row.kms_key} if row.kms_key else {})}
    repo = repositories.create(ctx, name, tags=row.resource_tags, mutability=row.tag_mutability,
                               mutability_filters=row.tag_mutability_filters, encryption=encryption)
    repo.policy_text = row.repository_policy
    repo.lifecycle_policy_text = row.lifecycle_policy
    ctx.session.flush()
    return repo


def for_push(ctx: Context, name: str) -> Repository:
    """The repository a registry push names (locked), created on push when a ``CREATE_ON_PUSH``
    template covers the name and the pusher may ``ecr:CreateRepository``; otherwise
    RepositoryNotFoundException, as without templates."""
    repo = repositories.find(ctx, name, for_update=True)
    if repo is not None:
        return repo
    if matching(ctx, name, "CREATE_ON_PUSH") is None or \
            not access.permits(ctx, access.Need("ecr:CreateRepository", name)):
        raise errors.RepositoryNotFoundException(name, ctx.registry_id)
    return create_repository(ctx, name, "CREATE_ON_PUSH")
