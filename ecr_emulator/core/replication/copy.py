"""Replicating one image to one destination registry: the ``replicate-image`` job.

Every registry of the emulator shares one content-addressed blob store, so a copy moves no
bytes: the destination repository links the same blobs (same digests, same bytes) and stores
the same manifest, through the same ``put_image`` a push uses, marked as a replicated push (so
it is never replicated on). An index brings its child manifests first; referrers (signatures,
SBOMs) of the image follow it. The destination repository is created when missing, from a
``REPLICATION`` creation template or with ECR's defaults. A tag that is immutable at the
destination and already there is left out, as ECR does. A copy into another account needs the
destination's registry policy to allow the source account ``ecr:ReplicateImage`` (and
``ecr:CreateRepository`` when the repository must be created); otherwise the status is FAILED.

One copy is one transaction on the destination, so a worker killed half-way leaves nothing
half-copied and the job, durable, runs again.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from ecr_emulator.core import errors, jobs, repositories, templates, uploads
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.images import lookup
from ecr_emulator.core.images import put as image_put
from ecr_emulator.core.naming import Principal, Scope
from ecr_emulator.storage.models import Image, ImageReplication, Repository

log = logging.getLogger(__name__)
JOB = "replicate-image"
# ECR does not document its replication failure codes; these are ours, and name the cause.
ACCESS_DENIED = "ACCESS_DENIED"  # the destination registry policy does not allow the source account
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"  # the destination is full (repositories, images or tags)


class ReplicationFailed(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def enqueue(ctx: Context, image: Image, dest: Scope, tag: str | None, backfill: dict[str, Any] | None = None) -> None:
    """Mark ``image`` IN_PROGRESS towards ``dest`` and queue its copy (in the caller's transaction)."""
    row = ctx.session.get(ImageReplication, (image.id, dest.account_id, dest.region))
    if row is None:
        ctx.session.add(ImageReplication(image_id=image.id, dest_account=dest.account_id, dest_region=dest.region,
                                         status="IN_PROGRESS", updated_at=ctx.now))
    else:
        row.status, row.failure_code, row.updated_at = "IN_PROGRESS", None, ctx.now
    ctx.session.flush()
    payload = {"account": ctx.scope.account_id, "region": ctx.scope.region, "image": image.id,
               "destAccount": dest.account_id, "destRegion": dest.region, "tag": tag}
    key = f"replicate:{image.id}:{dest.account_id}:{dest.region}:{tag or ''}"
    if backfill is not None:
        payload["backfill"] = backfill
        key = f"backfill:{backfill['id']}:{backfill['position']}"
    jobs.enqueue(ctx, JOB, payload, dedupe_key=key)


def denied(ctx: Context, source: Scope, name: str, creating: bool) -> str | None:
    """Why the source registry may not replicate into ``ctx``'s registry, or None."""
    if source.account_id == ctx.scope.account_id:
        return None  # within one account every region is the account's own
    from ecr_emulator.core import access

    wanted = ["ecr:ReplicateImage"] + (["ecr:CreateRepository"] if creating else [])
    for action in wanted:
        if not access.permits(ctx, access.Need(action, name)):
            return f"the registry policy of {ctx.scope.account_id} in {ctx.scope.region} does not allow " \
                   f"{action} for account {source.account_id}"
    return None


def _copy(ctx: Context, source_repo: Repository, image: Image, dest: Repository, tag: str | None,
          seen: set[int]) -> None:
    """Store ``image`` (children first, then its referrers) in ``dest``."""
    if image.id in seen:
        return
    seen.add(image.id)
    children = [c.child_digest for c in image.children]
    if children:
        for child in ctx.session.scalars(select(Image).where(Image.repository_id == source_repo.id,
                                                             Image.digest.in_(children))):
            _copy(ctx, source_repo, child, dest, None, seen)
    for blob in image.blobs:
        uploads.link_blob(ctx, dest, blob.digest, blob.size)
    if tag is not None and repositories.is_tag_immutable(dest, tag) and lookup.tag_row(ctx, dest, tag) is not None:
        tag = None  # an immutable tag that exists at the destination is left as it is (not an error)
    image_put.put_image(ctx, dest.name, image.manifest, image.media_type, tag, replicated=True)
    for referrer in ctx.session.scalars(select(Image).where(Image.repository_id == source_repo.id,
                                                            Image.subject_digest == image.digest)):
        _copy(ctx, source_repo, referrer, dest, None, seen)


def replicate(ctx: Context, source: Scope, image_id: int, tag: str | None) -> None:
    """Copy one image into ``ctx``'s registry. Raises ReplicationFailed with the cause."""
    image = ctx.session.get(Image, image_id)
    if image is None:
        return  # deleted before its copy ran: nothing to replicate (and no status left to report)
    source_repo = ctx.session.get(Repository, image.repository_id)
    dest = repositories.find(ctx, source_repo.name, for_update=True)
    reason = denied(ctx, source, source_repo.name, dest is None)
    if reason is not None:
        raise ReplicationFailed(ACCESS_DENIED, reason)
    if dest is None:
        dest = templates.create_repository(ctx, source_repo.name, "REPLICATION")
    _copy(ctx, source_repo, image, dest, tag, set())


def run_copy(services: Services, payload: dict[str, Any]) -> str | None:
    """The copy as one transaction on the destination. Returns the failure code, or None."""
    source = Scope(payload["account"], payload["region"])
    dest = Scope(payload["destAccount"], payload["destRegion"])
    principal = Principal(source.account_id, "replication")  # the source account's replication service
    failure: str | None = None
    try:
        services.run(dest, principal, lambda ctx: replicate(ctx, source, payload["image"], payload.get("tag")),
                     write=True)
    except ReplicationFailed as exc:
        log.info("replication of image %s to %s/%s failed: %s", payload["image"], dest.account_id, dest.region, exc)
        failure = exc.code
    except errors.LimitExceededException as exc:
        log.info("replication of image %s to %s/%s failed: %s", payload["image"], dest.account_id, dest.region, exc)
        failure = LIMIT_EXCEEDED

    def record(ctx: Context) -> None:
        row = ctx.session.get(ImageReplication, (payload["image"], dest.account_id, dest.region))
        if row is not None:
            row.status, row.failure_code, row.updated_at = ("FAILED", failure, ctx.now) if failure else \
                ("COMPLETE", None, ctx.now)

    services.run(source, None, record, write=True)
    return failure

