"""AWS resource tags on repositories, addressed by ARN (TagResource and friends)."""

from __future__ import annotations

from ecr_emulator.core import errors, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import parse_repository_arn, partition_for
from ecr_emulator.storage.models import Repository


def _repository_for_arn(ctx: Context, arn: str, for_update: bool = True) -> Repository:
    parsed = parse_repository_arn(arn)
    if parsed is None or not arn.startswith(f"arn:{partition_for(ctx.scope.region)}:"):
        raise errors.InvalidParameterException.constraint("resourceArn", "Invalid ARN")
    scope, name = parsed
    if scope.region != ctx.scope.region:
        raise errors.InvalidParameterException.constraint(
            "resourceArn", f"The ARN's region '{scope.region}' does not match the request's region '{ctx.scope.region}'"
        )
    if scope.account_id != ctx.scope.account_id:
        raise errors.AccessDeniedException(
            f"User is not authorized to access resource {arn}: it belongs to account {scope.account_id}"
        )
    return repositories.get(ctx, name, for_update=for_update)


def tag(ctx: Context, arn: str, tags: list[dict[str, str]]) -> None:
    repo = _repository_for_arn(ctx, arn)
    repositories.check_resource_tags(tags, {t.key for t in repo.tags})
    repositories.apply_resource_tags(repo, tags)


def untag(ctx: Context, arn: str, keys: list[str]) -> None:
    repo = _repository_for_arn(ctx, arn)
    for key in keys:
        repositories.check_tag_key(key)
    drop = set(keys)
    repo.tags[:] = [t for t in repo.tags if t.key not in drop]


def list_for(ctx: Context, arn: str) -> list[dict[str, str]]:
    repo = _repository_for_arn(ctx, arn, for_update=False)
    return [{"Key": t.key, "Value": t.value} for t in repo.tags]
