"""Replication backfills: images pushed before replication was configured, copied to one destination.

StartReplicationBackfill checks the destination is in the current configuration, that no other
backfill to that region is running and that fewer than ten run in the registry, and answers
``PREPARING``. A job then lists what qualifies (every image and tag of the repositories the
current rules send to that destination; index children and referrers travel with their parent)
and queues one copy each: ``IN_PROGRESS``. Each copy reports back; when all have, the backfill is
``COMPLETE``, or ``FAILED`` as soon as at least half of at least 100 processed copies failed.
StopReplicationBackfill (from PREPARING or IN_PROGRESS) turns it ``STOPPING``: copies not yet made
are skipped, and it is ``STOPPED`` once none is left. Results are listed once it has ended.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, select

from ecr_emulator.core import errors, jobs, pagination
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.naming import Scope
from ecr_emulator.core.replication import config, copy
from ecr_emulator.storage.models import (
    Image,
    ImageChild,
    ImageTag,
    RegistrySetting,
    ReplicationBackfill,
    ReplicationBackfillResult,
    Repository,
)

PREPARE_JOB = "replication-backfill-prepare"
RUNNING = ("PREPARING", "IN_PROGRESS", "STOPPING")
MAX_RUNNING = 10
JUDGED_AFTER = 100
FAILURE_RATIO = 0.5
# ECR does not document its backfill failure code; ours names the rule that ended the backfill.
THRESHOLD_EXCEEDED = "FAILURE_THRESHOLD_EXCEEDED"


def _not_found(ctx: Context, backfill_id: str) -> errors.EcrError:
    return errors.ReplicationBackfillNotFoundException(
        f"The replication backfill with id '{backfill_id}' does not exist in the registry with id "
        f"'{ctx.registry_id}'")


def _get(ctx: Context, backfill_id: str, *, for_update: bool = False) -> ReplicationBackfill:
    row = ctx.session.get(ReplicationBackfill, backfill_id, with_for_update=for_update or None)
    if row is None or (row.account_id, row.region) != (ctx.scope.account_id, ctx.scope.region):
        raise _not_found(ctx, backfill_id)
    return row


def _running(ctx: Context) -> list[ReplicationBackfill]:
    return list(ctx.session.scalars(select(ReplicationBackfill).where(
        ReplicationBackfill.account_id == ctx.scope.account_id, ReplicationBackfill.region == ctx.scope.region,
        ReplicationBackfill.status.in_(RUNNING))))


def destination(row: ReplicationBackfill) -> dict[str, str]:
    return {"region": row.dest_region, "registryId": row.dest_account}


def progress(row: ReplicationBackfill) -> dict[str, Any]:
    return {"totalReplicationCount": row.total, "completedReplicationCount": row.completed,
            "failedReplicationCount": row.failed, "failureCodes": row.failure_codes}


def summary(row: ReplicationBackfill) -> dict[str, Any]:
    out = {"replicationBackfillId": row.id, "destination": destination(row), "status": row.status,
           "progress": progress(row), "startedAt": row.started_at, "endedAt": row.ended_at}
    if row.failure_code:
        out["failureCode"] = row.failure_code
    return out


def start(ctx: Context, dest: dict[str, str]) -> ReplicationBackfill:
    scope = Scope(dest["registryId"], dest["region"])
    configured = {d["registryId"] + "/" + d["region"] for rule in config.configuration(ctx)["rules"]
                  for d in rule["destinations"]}
    if f"{scope.account_id}/{scope.region}" not in configured:
        raise errors.ValidationException(
            f"The destination {scope.account_id} in {scope.region} is not in the registry's replication "
            "configuration. Add it with PutReplicationConfiguration first.")
    ctx.session.get(RegistrySetting, (ctx.scope.account_id, ctx.scope.region, config.SETTING),
                    with_for_update=True)  # one registry's starts take turns, so the limits below hold
    running = _running(ctx)
    if any(row.dest_region == scope.region for row in running):
        raise errors.ReplicationBackfillInProgressException(
            f"A replication backfill to the region {scope.region} is already in progress.")
    if len(running) >= MAX_RUNNING:
        raise errors.LimitExceededException(
            f"The registry already has {MAX_RUNNING} replication backfills in progress, the most it may have.")
    row = ReplicationBackfill(id=str(uuid.uuid4()), account_id=ctx.scope.account_id, region=ctx.scope.region,
                              dest_account=scope.account_id, dest_region=scope.region, status="PREPARING",
                              total=0, completed=0, failed=0, failure_codes=[], started_at=ctx.now)
    ctx.session.add(row)
    ctx.session.flush()
    jobs.enqueue(ctx, PREPARE_JOB, {"account": ctx.scope.account_id, "region": ctx.scope.region, "id": row.id})
    return row


def stop(ctx: Context, backfill_id: str) -> ReplicationBackfill:
    row = _get(ctx, backfill_id, for_update=True)
    if row.status not in ("PREPARING", "IN_PROGRESS"):
        raise errors.ReplicationBackfillInvalidStatusException(
            f"The replication backfill with id '{backfill_id}' is {row.status} and cannot be stopped: only a "
            "PREPARING or IN_PROGRESS backfill can.")
    row.status = "STOPPING"  # the copies not made yet are skipped; the last one ends it (or the preparation)
    return row


def list_backfills(ctx: Context, next_token: str | None, max_results: int | None) -> tuple[list, str | None]:
    stmt = select(ReplicationBackfill).where(ReplicationBackfill.account_id == ctx.scope.account_id,
                                             ReplicationBackfill.region == ctx.scope.region)
    return pagination.page_by_keys(ctx, stmt, [ReplicationBackfill.started_at, ReplicationBackfill.id], next_token,
                                   max_results or 50, "ListReplicationBackfills", lambda r: [r.started_at, r.id])


def results(ctx: Context, backfill_id: str, status: str | None, next_token: str | None,
            max_results: int | None) -> dict[str, Any]:
    row = _get(ctx, backfill_id)
    out: dict[str, Any] = {"registryId": ctx.registry_id, **summary(row)}
    out.pop("progress")
    out["progress"] = progress(row)
    if row.status in RUNNING:
        return out
    stmt = select(ReplicationBackfillResult).where(ReplicationBackfillResult.backfill_id == row.id,
                                                   ReplicationBackfillResult.status.is_not(None))
    if status is not None:
        stmt = stmt.where(ReplicationBackfillResult.status == status)
    page, token = pagination.page_by_keys(ctx, stmt, [ReplicationBackfillResult.position], next_token, max_results,
                                          "DescribeReplicationBackfillResults", lambda r: [r.position])
    out["results"] = [_result(r) for r in page]
    out["nextToken"] = token
    return out


def _result(r: ReplicationBackfillResult) -> dict[str, Any]:
    image_id = {"imageDigest": r.image_digest, **({"imageTag": r.image_tag} if r.image_tag else {})}
    out: dict[str, Any] = {"repositoryName": r.repository_name, "imageId": image_id, "status": r.status}
    if r.failure_code:
        out["failureCode"] = r.failure_code
    if r.sub_failure_codes:
        out["subImageFailureCodes"] = r.sub_failure_codes
    return out


def _pending(ctx: Context, row: ReplicationBackfill) -> bool:
    return ctx.session.scalar(select(ReplicationBackfillResult.position).where(
        ReplicationBackfillResult.backfill_id == row.id, ReplicationBackfillResult.status.is_(None)).limit(1)) \
        is not None


def _qualifying(ctx: Context, dest: Scope) -> list[tuple[Repository, Image, str | None]]:
    """(repository, image, tag) for every image and tag the current rules send to ``dest``."""
    rules = [r for r in config.configuration(ctx)["rules"]
             if any((d["registryId"], d["region"]) == (dest.account_id, dest.region) for d in r["destinations"])]
    repos = [repo for repo in ctx.session.scalars(
        select(Repository).where(Repository.account_id == ctx.scope.account_id,
                                 Repository.region == ctx.scope.region).order_by(Repository.name))
        if any(config.matches(rule, repo.name) for rule in rules)]
    out: list[tuple[Repository, Image, str | None]] = []
    for repo in repos:
        child = exists().where(ImageChild.child_digest == Image.digest, ImageChild.image_id.in_(
            select(Image.id).where(Image.repository_id == repo.id).scalar_subquery()))
        tagged = exists().where(ImageTag.image_id == Image.id)
        images = ctx.session.scalars(
            select(Image).where(Image.repository_id == repo.id, Image.status == "ACTIVE",
                                Image.subject_digest.is_(None), tagged | ~child)
            .order_by(Image.pushed_at, Image.id))
        for image in images:
            tags = [t.tag for t in image.tags]
            out += [(repo, image, tag) for tag in tags] or [(repo, image, None)]
    return out


@jobs.handler(PREPARE_JOB)
def _prepare(services: Services, payload: dict[str, Any]) -> None:
    def prepare(ctx: Context) -> None:
        row = ctx.session.get(ReplicationBackfill, payload["id"], with_for_update=True)
        if row is None or row.status != "PREPARING":
            if row is not None and row.status == "STOPPING":
                row.status, row.ended_at = "STOPPED", ctx.now
            return
        dest = Scope(row.dest_account, row.dest_region)
        for position, (repo, image, tag) in enumerate(_qualifying(ctx, dest)):
            ctx.session.add(ReplicationBackfillResult(backfill_id=row.id, position=position, repository_name=repo.name,
                                                      image_digest=image.digest, image_tag=tag))
            copy.enqueue(ctx, image, dest, tag, backfill={"id": row.id, "position": position})
            row.total = position + 1
        row.status = "IN_PROGRESS" if row.total else "COMPLETE"
        if not row.total:
            row.ended_at = ctx.now

    services.run(Scope(payload["account"], payload["region"]), None, prepare, write=True)


def active(services: Services, backfill: dict[str, Any], source: Scope) -> bool:
    """Whether a backfill's copy should still be made (not after a stop or a failure)."""

    def status(ctx: Context) -> str | None:
        row = ctx.session.get(ReplicationBackfill, backfill["id"])
        return row.status if row is not None else None

    return services.run(source, None, status) == "IN_PROGRESS"


def record(services: Services, source: Scope, backfill: dict[str, Any], failure: str | None,
           skipped: bool = False) -> None:
    """A copy of the backfill finished (or was skipped): count it, and end the backfill when due."""

    def count(ctx: Context) -> None:
        row = ctx.session.get(ReplicationBackfill, backfill["id"], with_for_update=True)
        result = ctx.session.get(ReplicationBackfillResult, (backfill["id"], backfill["position"]))
        if row is None or result is None or result.status is not None:
            return
        if skipped:
            ctx.session.delete(result)
            row.total -= 1
        elif failure is None:
            result.status = "COMPLETE"
            row.completed += 1
        else:
            result.status, result.failure_code = "FAILED", failure
            row.failed += 1
            if failure not in row.failure_codes:
                row.failure_codes = [*row.failure_codes, failure]
        ctx.session.flush()
        processed = row.completed + row.failed
        if row.status == "IN_PROGRESS" and processed >= JUDGED_AFTER and row.failed >= FAILURE_RATIO * processed:
            row.status, row.failure_code, row.ended_at = "FAILED", THRESHOLD_EXCEEDED, ctx.now
        elif not _pending(ctx, row) and row.status in ("IN_PROGRESS", "STOPPING"):
            row.status, row.ended_at = ("STOPPED" if row.status == "STOPPING" else "COMPLETE"), ctx.now

    services.run(source, None, count, write=True)

