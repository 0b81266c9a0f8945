"""Running lifecycle policies for real: expire and archive what the evaluator chose.

A run reads one snapshot, evaluates it, then applies the actions in batches, each batch one
transaction. Before acting, every image is checked against the snapshot (still there, same
tags, same status, not newly referenced by an index); anything that moved meanwhile is left
for the next run. A run that dies half-way therefore leaves each image fully present or
fully gone, and the next run finishes the job. Blobs only the expired images used are
released at once; their bytes go when nothing references them any more.

Runs happen on a clock the user controls: a periodic sweep (``lifecycle_interval``) over every
repository with a policy, a run right after each push (``lifecycle_after_push``), and on
demand (``ecr-emulator lifecycle run``, the test-control API).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ecr_emulator.core import errors, gc, jobs, repositories
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.events import ImageDeleted, ImagePushed
from ecr_emulator.core.images import delete as image_delete
from ecr_emulator.core.images import storage_class
from ecr_emulator.core.images.delete import referencing_indexes
from ecr_emulator.core.lifecycle.evaluate import Action, evaluate
from ecr_emulator.core.lifecycle.policy import parse
from ecr_emulator.core.lifecycle.snapshot import image_facts
from ecr_emulator.core.manifests import INDEXES
from ecr_emulator.core.naming import Scope
from ecr_emulator.storage.models import Image, Repository

log = logging.getLogger(__name__)
BATCH = 200


@dataclass
class RunResult:
    repository: str
    expired: list[str] = field(default_factory=list)
    transitioned: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "expired": self.expired, "transitioned": self.transitioned,
                "skipped": self.skipped}


def _unchanged(image: Image | None, action: Action) -> bool:
    facts = action.image
    return (
        image is not None
        and image.status == facts.status
        and tuple(t.tag for t in image.tags) == facts.tags
        and image.pushed_at == facts.pushed_at
    )


def _apply(ctx: Context, repo: Repository, action: Action, result: RunResult, new_indexes: bool) -> list[str]:
    """Apply one action if the image is still as evaluated. Returns blob digests to release.

    The snapshot already excluded images its indexes reference; only an index pushed since
    (``new_indexes``) makes it necessary to look again, image by image.
    """
    image = ctx.session.get(Image, action.image.id)
    if not _unchanged(image, action) or (new_indexes and referencing_indexes(ctx, repo, action.image.digest)):
        result.skipped.append(action.image.digest)
        return []
    if action.kind == "transition":
        storage_class.archive(ctx, repo, image)
        result.transitioned.append(image.digest)
        return []
    blobs = [b.digest for b in image.blobs]
    image_delete.delete_image(ctx, repo, image, check_indexes=new_indexes, origin="lifecycle")
    result.expired.append(action.image.digest)
    return blobs


def _indexes_since(ctx: Context, repo: Repository, last_seen: int) -> bool:
    return ctx.session.scalar(
        select(Image.id).where(Image.repository_id == repo.id, Image.id > last_seen, Image.media_type.in_(INDEXES))
        .limit(1)
    ) is not None


def run_repository(services: Services, scope: Scope, name: str) -> RunResult:
    result = RunResult(name)
    services.pulls.flush()  # pulls through this process count for sinceImagePulled at once
    with services.unit(scope, write=True) as ctx:
        repo = repositories.get(ctx, name, for_update=True)
        if repo.lifecycle_policy_text is None:
            return result
        facts = image_facts(ctx, repo)
        actions = evaluate(parse(repo.lifecycle_policy_text), facts, ctx.now)
        repo.lifecycle_evaluated_at = ctx.now
        repo_id = repo.id
        last_seen = max((f.id for f in facts), default=0)
    released: list[str] = []
    for start in range(0, len(actions), BATCH):
        with services.unit(scope, write=True) as ctx:
            repo = ctx.session.scalars(select(Repository).where(Repository.id == repo_id).with_for_update()).first()
            if repo is None:
                break
            new_indexes = _indexes_since(ctx, repo, last_seen)
            batch = actions[start:start + BATCH]
            loaded = list(ctx.session.scalars(  # the batch and its rows in four queries, held while used
                select(Image).where(Image.id.in_([a.image.id for a in batch]))
                .options(selectinload(Image.tags), selectinload(Image.blobs), selectinload(Image.children))
            ))
            batch_blobs: list[str] = []
            with ctx.session.no_autoflush:  # one flush per batch, not one per image
                for action in batch:
                    batch_blobs += _apply(ctx, repo, action, result, new_indexes)
            if batch_blobs:  # in the same transaction: a run killed after it leaves no link behind
                ctx.session.flush()
                gc.drop_unreferenced_links(ctx.session, repo_id, digests=batch_blobs)
            released += batch_blobs
            del loaded
    if released:
        gc.delete_orphan_blobs(services, released)
    if result.expired or result.transitioned:
        log.info("lifecycle %s/%s %s: expired %d, archived %d", scope.account_id, scope.region, name,
                 len(result.expired), len(result.transitioned))
    return result


def _targets(services: Services, scope: Scope | None, name: str | None) -> list[tuple[str, str, str]]:
    """(account, region, name) of every repository with a policy, optionally narrowed."""

    def query(session) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
        stmt = select(Repository.account_id, Repository.region, Repository.name).where(
            Repository.lifecycle_policy_text.is_not(None)
        )
        if scope is not None:
            stmt = stmt.where(Repository.account_id == scope.account_id, Repository.region == scope.region)
        if name is not None:
            stmt = stmt.where(Repository.name == name)
        return [tuple(r) for r in session.execute(stmt.order_by(Repository.id))]

    return services.db.run(query)


def run_all(services: Services, scope: Scope | None = None, name: str | None = None) -> list[RunResult]:
    """Run every policy (of one registry, or one repository) now."""
    return [run_repository(services, Scope(a, r), n) for a, r, n in _targets(services, scope, name)]


def _enqueue(ctx: Context, account: str, region: str, name: str) -> None:
    jobs.enqueue(ctx, "lifecycle_run", {"account": account, "region": region, "repository": name},
                 dedupe_key=f"lifecycle:{account}:{region}:{name}")


@jobs.handler("lifecycle_run")
def _run_job(services: Services, payload: dict[str, Any]) -> None:
    try:
        run_repository(services, Scope(payload["account"], payload["region"]), payload["repository"])
    except errors.RepositoryNotFoundException:
        pass  # deleted since the job was queued


@jobs.handler("lifecycle_sweep")
def _sweep_job(services: Services, payload: dict[str, Any]) -> None:
    with services.unit(services.default_scope, write=True) as ctx:
        for account, region, name in _targets(services, None, None):
            _enqueue(ctx, account, region, name)


jobs.periodic("lifecycle", "lifecycle_sweep", lambda services: services.settings.lifecycle_interval)


def after_push(ctx: Context, event: ImagePushed) -> None:
    """Run the repository's policy soon after a new image arrives (``--lifecycle-after-push``)."""
    repo = event.repository
    if event.kind in ("new", "replicated") and repo.lifecycle_policy_text is not None \
            and ctx.settings.lifecycle_after_push:
        _enqueue(ctx, repo.account_id, repo.region, repo.name)


def referrers_follow(ctx: Context, event: ImageDeleted) -> None:
    """Referrers of a deleted subject are cleaned up soon after (ECR: within 24 hours)."""
    repo, image = event.repository, event.image
    key = ("subjects", repo.id)
    if key not in ctx.memo:  # one query per request, however many images it deletes
        ctx.memo[key] = set(ctx.session.scalars(
            select(Image.subject_digest).where(Image.repository_id == repo.id, Image.subject_digest.is_not(None))
        ))
    if image.digest not in ctx.memo[key]:
        return
    jobs.enqueue(ctx, "referrer_cleanup",
                 {"account": repo.account_id, "region": repo.region, "repository": repo.id,
                  "subject": image.digest})


@jobs.handler("referrer_cleanup")
def _cleanup_referrers(services: Services, payload: dict[str, Any]) -> None:
    with services.unit(Scope(payload["account"], payload["region"]), write=True) as ctx:
        repo = ctx.session.get(Repository, payload["repository"])
        if repo is None or ctx.session.scalar(
            select(Image.id).where(Image.repository_id == repo.id, Image.digest == payload["subject"])
        ):
            return  # repository gone, or the subject was pushed again
        for ref in ctx.session.scalars(
            select(Image).where(Image.repository_id == repo.id, Image.subject_digest == payload["subject"])
        ):
            if not referencing_indexes(ctx, repo, ref.digest):
                image_delete.delete_image(ctx, repo, ref)  # its own referrers follow through the hook

