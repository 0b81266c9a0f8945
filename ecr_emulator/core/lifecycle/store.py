"""A repository's lifecycle policy: Put / Get / Delete."""

from __future__ import annotations

from ecr_emulator.core import errors, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.lifecycle.policy import parse
from ecr_emulator.storage.models import Repository


def put(ctx: Context, repository_name: str, text: str) -> Repository:
    policy = parse(text)  # a policy that fails validation changes nothing
    repo = repositories.get(ctx, repository_name, for_update=True)
    repo.lifecycle_policy_text = policy.text
    repo.lifecycle_evaluated_at = None
    return repo


def get(ctx: Context, repository_name: str) -> Repository:
    repo = repositories.get(ctx, repository_name)
    if repo.lifecycle_policy_text is None:
        raise errors.LifecyclePolicyNotFoundException(repository_name, ctx.registry_id)
    return repo


def delete(ctx: Context, repository_name: str) -> tuple[str, float]:
    repo = repositories.get(ctx, repository_name, for_update=True)
    if repo.lifecycle_policy_text is None:
        raise errors.LifecyclePolicyNotFoundException(repository_name, ctx.registry_id)
    out = (repo.lifecycle_policy_text, repo.lifecycle_evaluated_at or 0.0)
    repo.lifecycle_policy_text = None
    repo.lifecycle_evaluated_at = None
    return out
