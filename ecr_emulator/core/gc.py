"""Garbage collection, online and driven by database references.

What goes, in order: uploads nobody touched for ``upload_gc_age`` (on the emulator clock);
staging files with no upload row; a repository's links to blobs that no image of that
repository references, once they are that old too; blob rows nothing links or references;
and last the bytes of blobs that have no row.

Two rules keep a concurrent push safe on every backend:

- Links are dropped one repository at a time, holding the repository's row lock, the lock a
  manifest push takes before it checks its blobs. A push either committed first (its image
  references the blob, so the link stays) or runs after (and finds the layer missing).
- Bytes are deleted only after the rows are gone and committed, one blob at a time under the
  per-blob lock an upload commit also takes (``storage.sql.lock_blob``), and only if no row
  names the blob by then. A blob uploaded again at that moment keeps its bytes; a collector
  killed half-way leaves bytes without rows, which a later sweep removes.
- Bytes without any row are swept only once they are ``PLACED_GRACE`` seconds old (real
  time, as the store reports it): an upload commit places a blob's bytes before the
  transaction that records it (``uploads.place_ahead``), and is not to be made to place them
  twice. (Were they swept anyway, the commit would find them gone under the blob's lock and
  place them again.) Staging of uploads without a row waits ``upload_gc_age`` likewise.

The same holds on every backend: the locks are database locks (a PostgreSQL row or advisory
lock, SQLite's writer lock) and the store is only asked to stat, list and delete.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from ecr_emulator.core import jobs
from ecr_emulator.core.context import Services
from ecr_emulator.storage.models import Blob, Image, ImageBlob, Repository, RepositoryBlob, Upload
from ecr_emulator.storage.sql import lock_blob

log = logging.getLogger(__name__)
GC_INTERVAL = 600.0
SWEEP_BATCH = 200
PLACED_GRACE = 3600.0


def collect(services: Services) -> dict[str, int]:
    now = services.clock.now()
    cutoff = now - services.settings.upload_gc_age
    counts = {"uploads": 0, "orphan_files": 0, "links": 0, "blobs": 0}

    def uploads(session) -> list[str]:  # type: ignore[no-untyped-def]
        stale = []
        idle = or_(Upload.lease_until.is_(None), Upload.lease_until < time.time())  # nobody streaming into it
        for up in session.scalars(select(Upload).where(Upload.updated_at < cutoff, idle)):
            stale.append(up.id)
            session.delete(up)
        return stale

    staging = services.blobs.staging
    for upload_id in services.db.run(uploads, write=True):
        staging.discard(upload_id)
        counts["uploads"] += 1

    # Staging without a row (a crash between the two, a writer that lost its upload): its age is real time.
    real_cutoff = time.time() - services.settings.upload_gc_age
    staged = [upload_id for upload_id, mtime in staging.uploads() if mtime < real_cutoff]
    known = _recorded(services, Upload.id, staged)
    for upload_id in staged:
        if upload_id not in known:
            staging.discard(upload_id)
            counts["orphan_files"] += 1

    counts["links"] = drop_stale_links(services, cutoff)
    counts["blobs"] = delete_orphan_blobs(services)
    counts["orphan_files"] += sweep_unrecorded_files(services)
    if any(counts.values()):
        log.info("garbage collected %s", counts)
    return counts


def _unreferenced():  # type: ignore[no-untyped-def]
    """RepositoryBlob rows no image of their repository references."""
    referenced = (
        exists()
        .where(ImageBlob.digest == RepositoryBlob.digest)
        .where(Image.id == ImageBlob.image_id)
        .where(Image.repository_id == RepositoryBlob.repository_id)
    )
    return ~referenced


def drop_stale_links(services: Services, cutoff: float) -> int:
    """Unlink old unreferenced blobs, one repository (and its lock) per transaction."""
    repository_ids = services.db.run(lambda s: sorted(set(s.scalars(
        select(RepositoryBlob.repository_id).where(_unreferenced(), RepositoryBlob.created_at < cutoff)
    ))))
    dropped = 0
    for repository_id in repository_ids:

        def drop(session: Session, repository_id: int = repository_id) -> int:
            locked = session.scalars(
                select(Repository.id).where(Repository.id == repository_id).with_for_update()
            ).first()
            if locked is None:
                return 0  # deleted meanwhile; its links went with it
            return drop_unreferenced_links(session, repository_id, cutoff=cutoff)

        dropped += services.db.run(drop, write=True)
    return dropped


def drop_unreferenced_links(
    session: Session, repository_id: int, *, cutoff: float | None = None, digests: list[str] | None = None,
) -> int:
    """Unlink blobs from one repository in which no image references them any more. The caller
    holds the repository's row lock (``repositories.get(..., for_update=True)``).

    The collector passes an age ``cutoff`` (a freshly uploaded layer waits for its manifest);
    lifecycle expiry passes the exact blobs of the images it just removed.
    """
    stmt = select(RepositoryBlob).where(RepositoryBlob.repository_id == repository_id, _unreferenced())
    if cutoff is not None:
        stmt = stmt.where(RepositoryBlob.created_at < cutoff)
    if digests is not None:
        stmt = stmt.where(RepositoryBlob.digest.in_(digests))
    rows = list(session.scalars(stmt))
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def delete_orphan_blobs(services: Services, digests: list[str] | None = None) -> int:
    """Remove blobs that no repository links and no image references, bytes included; only
    among ``digests`` when the caller knows which blobs it just released."""

    def rows(session: Session) -> list[str]:
        linked = exists().where(RepositoryBlob.digest == Blob.digest)
        used = exists().where(ImageBlob.digest == Blob.digest)
        stmt = select(Blob).where(~linked, ~used)
        if digests is not None:
            stmt = stmt.where(Blob.digest.in_(digests))
        gone = list(session.scalars(stmt))
        for row in gone:
            session.delete(row)
        session.flush()
        return [row.digest for row in gone]

    removed = services.db.run(rows, write=True)
    delete_unrecorded(services, removed)
    return len(removed)


def delete_unrecorded(services: Services, digests: list[str]) -> int:
    """Delete the bytes of those ``digests`` that no blob row names, each under its blob lock."""
    deleted = 0
    for start in range(0, len(digests), SWEEP_BATCH):
        batch = digests[start:start + SWEEP_BATCH]

        def sweep(session: Session, batch: list[str] = batch) -> int:
            count = 0
            for digest in batch:
                lock_blob(session, digest)
                if session.get(Blob, digest) is None:
                    services.blobs.delete(digest)
                    count += 1
            return count

        deleted += services.db.run(sweep, write=True)
    return deleted


def sweep_unrecorded_files(services: Services, grace: float = PLACED_GRACE) -> int:
    """Bytes left without a row by a collector or reset that died after committing, or placed
    for a commit that failed, once they are ``grace`` seconds old."""
    oldest = time.time() - grace
    stored = [digest for digest, modified in services.blobs.list() if modified < oldest or grace <= 0]
    recorded = _recorded(services, Blob.digest, stored)
    return delete_unrecorded(services, [d for d in stored if d not in recorded])


def _recorded(services: Services, column, values: list[str]) -> set[str]:  # type: ignore[no-untyped-def]
    """Those of ``values`` that ``column`` holds, asked 1,000 at a time."""
    found: set[str] = set()
    for start in range(0, len(values), 1000):
        chunk = values[start:start + 1000]
        found |= set(services.db.run(lambda s, c=chunk: list(s.scalars(select(column).where(column.in_(c))))))
    return found


@jobs.handler("gc")
def _gc_job(services: Services, payload: dict) -> None:
    collect(services)


jobs.periodic("gc", "gc", lambda services: min(GC_INTERVAL, max(services.settings.upload_gc_age / 4, 1.0)))
