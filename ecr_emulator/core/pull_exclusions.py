"""Pull-time update exclusions: principals whose pulls do not refresh ``lastRecordedPullTime``.

A registry keeps up to 100 IAM user or role ARNs (scanners, CI jobs that pull everything);
their pulls, through the registry or BatchGetImage, leave the pull time as it was, so lifecycle
``sinceImagePulled`` rules see only the pulls that mean use. The check costs the pulls nothing:
the pull-time writer (``core/images/pulls.py``) skips excluded principals when it writes.
"""

from __future__ import annotations

from sqlalchemy import func, select

from ecr_emulator.core import errors, pagination
from ecr_emulator.core.context import Context
from ecr_emulator.storage.models import PullTimeExclusion

MAX_EXCLUSIONS = 100


def _registry(ctx: Context):  # type: ignore[no-untyped-def]
    return (PullTimeExclusion.account_id == ctx.scope.account_id, PullTimeExclusion.region == ctx.scope.region)


def register(ctx: Context, arn: str) -> PullTimeExclusion:
    if ctx.session.get(PullTimeExclusion, (ctx.scope.account_id, ctx.scope.region, arn)) is not None:
        raise errors.ExclusionAlreadyExistsException(
            f"The principal '{arn}' is already excluded from pull time updates in the registry with id "
            f"'{ctx.registry_id}'")
    count = ctx.session.scalar(select(func.count()).select_from(PullTimeExclusion).where(*_registry(ctx)))
    if count >= MAX_EXCLUSIONS:
        raise errors.LimitExceededException(
            f"The registry with id '{ctx.registry_id}' already excludes {MAX_EXCLUSIONS} principals from pull "
            "time updates, the most it may.")
    row = PullTimeExclusion(account_id=ctx.scope.account_id, region=ctx.scope.region, principal_arn=arn,
                            created_at=ctx.now)
    ctx.session.add(row)
    ctx.session.flush()
    return row


def deregister(ctx: Context, arn: str) -> None:
    row = ctx.session.get(PullTimeExclusion, (ctx.scope.account_id, ctx.scope.region, arn))
    if row is None:
        raise errors.ExclusionNotFoundException(
            f"The principal '{arn}' is not excluded from pull time updates in the registry with id "
            f"'{ctx.registry_id}'")
    ctx.session.delete(row)


def listed(ctx: Context, next_token: str | None, max_results: int | None) -> tuple[list[str], str | None]:
    stmt = select(PullTimeExclusion).where(*_registry(ctx))
    rows, token = pagination.page_by_keys(ctx, stmt, [PullTimeExclusion.principal_arn], next_token, max_results,
                                          "ListPullTimeUpdateExclusions", lambda r: [r.principal_arn])
    return [r.principal_arn for r in rows], token
