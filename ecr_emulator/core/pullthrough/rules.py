"""Pull through cache rules: ECR's validation, the rules of a registry, and the rule (and upstream
repository) a cache repository name maps to (ECR-BEHAVIOUR 11.1-11.2).

A rule's ``ecrRepositoryPrefix`` has an implied trailing ``/`` (``docker-hub`` covers
``docker-hub/library/alpine``, not ``docker-hub`` itself); the longest covering prefix wins and a
``ROOT`` rule (ECR to ECR only) covers every name no other rule covers. The upstream repository is
the rest of the name, under ``upstreamRepositoryPrefix`` when the rule has one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ecr_emulator.core import errors, pagination
from ecr_emulator.core.context import Context
from ecr_emulator.core.pullthrough import secrets
from ecr_emulator.core.templates import covering
from ecr_emulator.storage.models import PullThroughRule

ROOT = "ROOT"
MAX_RULES = 50  # per registry (ECR's quota)
NO_AUTH, SECRET, ROLE = "none", "secret", "role"


@dataclass(frozen=True)
class Upstream:
    registry: str  # the upstreamRegistry enum value
    url: re.Pattern[str]  # the upstreamRegistryUrl it takes
    auth: str  # NO_AUTH, SECRET (credentialArn required) or ROLE (ECR to ECR, customRoleArn)


UPSTREAMS = (
    Upstream("ecr-public", re.compile(r"public\.ecr\.aws"), NO_AUTH),
    Upstream("k8s", re.compile(r"registry\.k8s\.io"), NO_AUTH),
    Upstream("quay", re.compile(r"quay\.io"), NO_AUTH),
    Upstream("docker-hub", re.compile(r"registry-1\.docker\.io"), SECRET),
    Upstream("github-container-registry", re.compile(r"ghcr\.io"), SECRET),
    Upstream("azure-container-registry", re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?\.azurecr\.io"), SECRET),
    Upstream("gitlab-container-registry", re.compile(r"registry\.gitlab\.com"), SECRET),
    Upstream("chainguard", re.compile(r"cgr\.dev"), SECRET),
    Upstream("ecr", re.compile(r"[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"), ROLE),
)
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::([0-9]{12}):role/[\w+=,.@/-]{1,512}")


def upstream_of(url: str, named: str | None) -> Upstream:
    """The upstream a rule's URL (and optional ``upstreamRegistry``) names, or
    UnsupportedUpstreamRegistryException."""
    found = next((u for u in UPSTREAMS if u.url.fullmatch(url)), None)
    if found is None:
        raise errors.UnsupportedUpstreamRegistryException(
            f"The upstream registry URL '{url}' is not supported. Use one of: public.ecr.aws, registry.k8s.io, "
            "quay.io, registry-1.docker.io, ghcr.io, <name>.azurecr.io, registry.gitlab.com, cgr.dev, "
            "<account>.dkr.ecr.<region>.amazonaws.com"
        )
    if named is not None and named != found.registry:
        raise errors.UnsupportedUpstreamRegistryException(
            f"The upstream registry URL '{url}' belongs to upstream registry '{found.registry}', not '{named}'."
        )
    return found


def key_of(prefix: str) -> str:
    """The prefix as stored and compared: ``docker-hub/`` and ``docker-hub`` are one rule."""
    return prefix if prefix == ROOT else prefix.rstrip("/")


def _find(ctx: Context, prefix: str) -> PullThroughRule | None:
    return ctx.session.get(PullThroughRule, (ctx.scope.account_id, ctx.scope.region, key_of(prefix)))


def _not_found(ctx: Context, prefix: str) -> errors.PullThroughCacheRuleNotFoundException:
    return errors.PullThroughCacheRuleNotFoundException(
        f"The pull through cache rule with prefix '{prefix}' does not exist in the registry with id "
        f"'{ctx.registry_id}'"
    )


def require(ctx: Context, prefix: str) -> PullThroughRule:
    row = _find(ctx, prefix)
    if row is None:
        raise _not_found(ctx, prefix)
    return row


def view(row: PullThroughRule) -> dict[str, Any]:
    """Every member the rule operations answer with (each output shape takes its own)."""
    return {
        "ecrRepositoryPrefix": row.prefix,
        "upstreamRegistryUrl": row.upstream_url,
        "upstreamRegistry": row.upstream_registry,
        "upstreamRepositoryPrefix": row.upstream_prefix,
        "credentialArn": row.credential_arn,
        "customRoleArn": row.custom_role_arn,
        "registryId": row.account_id,
        "createdAt": row.created_at,
        "updatedAt": row.updated_at,
    }


def _check_credentials(ctx: Context, upstream: Upstream, credential_arn: str | None, role: str | None) -> None:
    """What each kind of upstream needs, and the secret readable (ECR reads it when a rule is set)."""
    if upstream.auth == ROLE:
        if credential_arn:
            raise errors.ValidationException("An ECR upstream registry authenticates with customRoleArn, not "
                                             "credentialArn.")
        if not role:
            raise errors.ValidationException("An ECR upstream registry requires customRoleArn, the IAM role Amazon "
                                             "ECR assumes to pull from it.")
        m = ROLE_ARN.fullmatch(role)
        if m is None:
            raise errors.ValidationException(f"Invalid customRoleArn '{role}': expected "
                                             "arn:aws:iam::<account>:role/<name>")
        if m[1] != ctx.scope.account_id:
            raise errors.ValidationException(f"The role '{role}' must be in the account of the registry "
                                             f"({ctx.scope.account_id}).")
        return
    if role:
        raise errors.ValidationException("customRoleArn can only be set for an ECR upstream registry.")
    if upstream.auth == SECRET and not credential_arn:
        raise errors.UnsupportedUpstreamRegistryException(
            "The specified upstream registry requires authentication. Specify a valid Secrets Manager ARN"
        )
    if credential_arn:
        secrets.value(ctx.settings.secrets_file, ctx.scope, credential_arn)


def create(ctx: Context, p: dict[str, Any]) -> PullThroughRule:
    prefix, url = p["ecrRepositoryPrefix"], p["upstreamRegistryUrl"]
    upstream = upstream_of(url, p.get("upstreamRegistry"))
    upstream_prefix = p.get("upstreamRepositoryPrefix") or ROOT
    if upstream.auth != ROLE:
        if prefix == ROOT:
            raise errors.ValidationException("ROOT can only be the ecrRepositoryPrefix of a rule whose upstream is "
                                             "an ECR registry.")
        if upstream_prefix != ROOT:
            raise errors.ValidationException("upstreamRepositoryPrefix can only be set for a rule whose upstream is "
                                             "an ECR registry.")
    else:
        if prefix == ROOT and upstream_prefix != ROOT:
            raise errors.ValidationException("upstreamRepositoryPrefix can only be set when ecrRepositoryPrefix is "
                                             "not ROOT.")
        if url.split(".")[0] == ctx.scope.account_id and f".ecr.{ctx.scope.region}." in url:
            raise errors.ValidationException("A registry cannot be its own upstream registry.")
    _check_credentials(ctx, upstream, p.get("credentialArn"), p.get("customRoleArn"))
    if _find(ctx, prefix) is not None:
        raise errors.PullThroughCacheRuleAlreadyExistsException(
            f"A pull through cache rule with the prefix '{prefix}' already exists in the registry with id "
            f"'{ctx.registry_id}'"
        )
    count = ctx.session.scalar(select(func.count()).select_from(PullThroughRule).where(
        PullThroughRule.account_id == ctx.scope.account_id, PullThroughRule.region == ctx.scope.region))
    if count >= MAX_RULES:
        raise errors.LimitExceededException(
            f"The maximum number of pull through cache rules ({MAX_RULES}) in the registry with id "
            f"'{ctx.registry_id}' has been reached."
        )
    row = PullThroughRule(account_id=ctx.scope.account_id, region=ctx.scope.region, key=key_of(prefix),
                          prefix=prefix, upstream_registry=upstream.registry, upstream_url=url,
                          upstream_prefix=upstream_prefix, credential_arn=p.get("credentialArn") or None,
                          custom_role_arn=p.get("customRoleArn") or None, created_at=ctx.now, updated_at=ctx.now)
    ctx.session.add(row)
    ctx.session.flush()
    return row


def update(ctx: Context, p: dict[str, Any]) -> PullThroughRule:
    """Only the credentials (or the role) change; another upstream needs a new rule."""
    row = require(ctx, p["ecrRepositoryPrefix"])
    upstream = upstream_of(row.upstream_url, row.upstream_registry)
    credential_arn = p.get("credentialArn", row.credential_arn)
    role = p.get("customRoleArn", row.custom_role_arn)
    _check_credentials(ctx, upstream, credential_arn, role)
    row.credential_arn, row.custom_role_arn = credential_arn or None, role or None
    row.updated_at = ctx.now
    ctx.session.flush()
    return row


def delete(ctx: Context, prefix: str) -> dict[str, Any]:
    row = require(ctx, prefix)
    out = view(row)
    ctx.session.delete(row)
    return out


def describe(ctx: Context, prefixes: list[str] | None, next_token: str | None,
             max_results: int | None) -> tuple[list[PullThroughRule], str | None]:
    stmt = select(PullThroughRule).where(PullThroughRule.account_id == ctx.scope.account_id,
                                         PullThroughRule.region == ctx.scope.region)
    if prefixes:
        for prefix in prefixes:  # naming a prefix that has no rule is an error, not an empty answer
            require(ctx, prefix)
        stmt = stmt.where(PullThroughRule.key.in_([key_of(p) for p in prefixes]))
    return pagination.page_by_keys(ctx, stmt, [PullThroughRule.key], next_token, max_results,
                                   "DescribePullThroughCacheRules", lambda row: [row.key])


@dataclass(frozen=True)
class Source:
    """Where one cache repository's images come from."""

    registry: str  # upstreamRegistry
    url: str  # upstreamRegistryUrl, a host
    credential_arn: str | None
    custom_role_arn: str | None
    repository: str  # the upstream repository's name


def source_for(ctx: Context, name: str) -> Source | None:
    """The upstream of repository ``name``: the rule with the longest covering prefix, else the
    ROOT rule, mapped to the upstream repository name; None if no rule covers the name."""
    rows = covering(ctx, PullThroughRule, name)
    if not rows:
        return None
    row = rows[0]
    rest = name if row.key == ROOT else name[len(row.key) + 1:]
    upstream_name = rest if row.upstream_prefix == ROOT else f"{key_of(row.upstream_prefix)}/{rest}"
    return Source(row.upstream_registry, row.upstream_url, row.credential_arn, row.custom_role_arn, upstream_name)
