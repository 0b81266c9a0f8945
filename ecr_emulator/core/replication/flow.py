"""What replication does when images change: the event subscribers and the jobs they queue.

A push (new image, retag, restore) in a repository that rules cover queues one copy per
destination; a replicated copy is never replicated on. With ``deleteReplication`` on, a deletion
(by a user or a lifecycle policy) and a tag removal are replayed at the destinations; a deletion
made by replication is not replayed further. DescribeImageReplicationStatus reports one status per
destination the image was sent to.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ecr_emulator.core import jobs, repositories
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.events import ImageDeleted, ImagePushed, ImageUntagged
from ecr_emulator.core.images import delete as image_delete
from ecr_emulator.core.images import lookup
from ecr_emulator.core.naming import Principal, Scope
from ecr_emulator.core.replication import backfill as backfills
from ecr_emulator.core.replication import config, copy
from ecr_emulator.storage.models import ImageReplication

DELETE_JOB = "replicate-delete"


def on_push(ctx: Context, event: ImagePushed) -> None:
    if event.kind == "replicated" or event.image.status != "ACTIVE":
        return
    for dest in config.destinations_for(ctx, event.repository.name):
        copy.enqueue(ctx, event.image, dest.scope, event.tag)


def _replay(ctx: Context, repository_name: str, payload: dict[str, Any]) -> None:
    for dest in config.destinations_for(ctx, repository_name):
        if dest.replicate_deletes:
            jobs.enqueue(ctx, DELETE_JOB, {**payload, "account": ctx.scope.account_id, "region": ctx.scope.region,
                                           "destAccount": dest.scope.account_id, "destRegion": dest.scope.region,
                                           "repository": repository_name})


def on_delete(ctx: Context, event: ImageDeleted) -> None:
    if event.origin != "replication":
        _replay(ctx, event.repository.name, {"digest": event.image.digest, "tag": None})


def on_untag(ctx: Context, event: ImageUntagged) -> None:
    if event.origin != "replication":
        _replay(ctx, event.repository.name, {"digest": event.image.digest, "tag": event.tag})


def statuses(ctx: Context, repository_name: str, image_id: dict[str, Any]) -> dict[str, Any]:
    """DescribeImageReplicationStatus."""
    repo = repositories.get(ctx, repository_name)
    image = lookup.require(ctx, repo, image_id)
    rows = ctx.session.scalars(select(ImageReplication).where(ImageReplication.image_id == image.id)
                               .order_by(ImageReplication.dest_account, ImageReplication.dest_region))
    out = []
    for row in rows:
        status = {"region": row.dest_region, "registryId": row.dest_account, "status": row.status}
        if row.failure_code:
            status["failureCode"] = row.failure_code
        out.append(status)
    return {"repositoryName": repo.name, "imageId": lookup.echo_id(image, image_id), "replicationStatuses": out}


@jobs.handler(copy.JOB)
def _copy_job(services: Services, payload: dict[str, Any]) -> None:
    backfill = payload.get("backfill")
    if backfill is None:
        copy.run_copy(services, payload)
        return
    source = Scope(payload["account"], payload["region"])
    if not backfills.active(services, backfill, source):
        backfills.record(services, source, backfill, None, skipped=True)
        return
    backfills.record(services, source, backfill, copy.run_copy(services, payload))


@jobs.handler(DELETE_JOB)
def _delete_job(services: Services, payload: dict[str, Any]) -> None:
    """Replay a deletion (or a tag removal) at one destination, if the image is there."""
    source, dest = Scope(payload["account"], payload["region"]), Scope(payload["destAccount"], payload["destRegion"])

    def replay(ctx: Context) -> None:
        repo = repositories.find(ctx, payload["repository"], for_update=True)
        image = lookup.by_digest(ctx, repo, payload["digest"]) if repo is not None else None
        if image is None or copy.denied(ctx, source, repo.name, creating=False) is not None:
            return
        if payload["tag"] is not None:
            image_delete.untag(ctx, repo, image, payload["tag"], origin="replication")
        elif not image_delete.referencing_indexes(ctx, repo, image.digest):
            image_delete.delete_image(ctx, repo, image, origin="replication")

    services.run(dest, Principal(source.account_id, "replication"), replay, write=True)
