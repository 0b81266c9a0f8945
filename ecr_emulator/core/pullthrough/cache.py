"""The pull through cache's read-through handler: what a pull that missed does in a repository
that a rule covers (ECR-BEHAVIOUR 11.2).

On a miss (no repository, no such tag or digest, a blob whose bytes are gone) or a cached tag due
its daily check, and only when a rule covers the repository's name: the caller needs
``ecr:CreateRepository`` if the repository must be created (else the pull answers
RepositoryNotFound, as ECR does) and ``ecr:BatchImportUpstreamImage`` (else "Requested image not found"). Then
the fetch is handed to ``Services.run`` as outside work (no transaction open while the network
is used) and the pull runs again; how the fetch went waits for it in ``ctx.carry``. A failed
refresh serves the cached copy.
"""

from __future__ import annotations

import re
from typing import Any

from ecr_emulator.core import access, errors, repositories
from ecr_emulator.core.context import Context, OutsideWork
from ecr_emulator.core.pullthrough import rules
from ecr_emulator.core.pullthrough.fetch import Fetch
from ecr_emulator.core.readthrough import Miss

DOCKER_HUB = "docker-hub"
# What may be asked of an upstream: an OCI tag, or a sha256 digest (what the cache can verify).
REFERENCE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}|sha256:[a-f0-9]{64}")


def on_miss(ctx: Context, miss: Miss) -> None:
    key = ("pull-through", ctx.scope, miss.kind, miss.repository, miss.reference)
    if key in ctx.carry:  # this pull fetched (or tried to) already
        outcome = ctx.carry[key]
        if outcome is None or miss.stale:
            return
        raise outcome
    if not REFERENCE.fullmatch(miss.reference):
        return
    source = rules.source_for(ctx, miss.repository)
    if source is None:
        return
    if not miss.repository_exists and not _may(ctx, "ecr:CreateRepository", miss.repository):
        return
    if not _may(ctx, "ecr:BatchImportUpstreamImage", miss.repository):
        if miss.repository_exists:
            return  # not found, as without a cache
        raise errors.UpstreamImageFailure("ImageNotFound", "Requested image not found")  # ECR's words, not NAME_UNKNOWN
    if miss.stale and _immutable(ctx, miss):
        return  # an immutable cached tag is never updated (ECR 11.2)
    if miss.kind == "manifest" and not miss.stale and source.registry == DOCKER_HUB and "/" not in source.repository:
        raise errors.UpstreamImageFailure(
            "UpstreamAccessDenied",
            f"The authentication to the upstream registry failed: Docker Hub has no repository "
            f"'{source.repository}'. Official images are under library/: pull "
            f"'{miss.repository.rsplit('/', 1)[0]}/library/{source.repository}'.",
        )
    fetch = Fetch(ctx.services, ctx.scope, ctx.principal, miss.repository, source)

    def work(carry: dict[Any, Any]) -> None:
        try:
            if miss.kind == "blob":
                fetch.blob(miss.reference)
            else:
                fetch.image(miss.reference, miss.stale)
            carry[key] = None
        except (errors.UpstreamImageFailure, errors.UnableToGetUpstreamImageException,
                errors.UnableToGetUpstreamLayerException) as exc:
            carry[key] = exc

    raise OutsideWork(work)


def _may(ctx: Context, action: str, repository: str) -> bool:
    return access.permits(ctx, access.Need(action, repository))


def _immutable(ctx: Context, miss: Miss) -> bool:
    repo = repositories.find(ctx, miss.repository)
    return repo is not None and repositories.is_tag_immutable(repo, miss.reference)
