"""Garbage collection, online and driven by database references.

What goes, in order: uploads nobody touched for ``upload_gc_age`` (on the emulator clock); staging files with no
upload row; a repository's links to blobs that no image of that repository references, once
they are that old too; and finally blobs nothing links or references at all, bytes included.
Every deletion of bytes happens while the write transaction holds the lock a blob commit also
needs, so a blob being re-uploaded at that moment is never lost.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from ecr_emulator.core import jobs
from ecr_emulator.core.context import Services
from ecr_emulator.core.uploads import HASHERS
from ecr_emulator.storage.models import Blob, Image, ImageBlob, RepositoryBlob, Upload

log = logging.getLogger(__name__)
GC_INTERVAL = 600.0


def collect(services: Services) -> dict[str, int]:
    now = services.clock.now()
    cutoff = now - services.settings.upload_gc_age
    counts = {"uploads": 0, "orphan_files": 0, "links": 0, "blobs": 0}

    def uploads(session) -> list[str]:  # type: ignore[no-untyped-def]
        stale = []
        for up in session.scalars(select(Upload).where(Upload.updated_at < cutoff)):
            stale.append(up.id)
            session.delete(up)
        return stale

    for upload_id in services.db.run(uploads, write=True):
        services.blobs.discard(upload_id)
        HASHERS.forget(upload_id)
        counts["uploads"] += 1

    # Staging files without a row (a crash between the two): their age is real time.
    known = set(services.db.run(lambda s: list(s.scalars(select(Upload.id)))))
    real_cutoff = time.time() - services.settings.upload_gc_age
    for upload_id, mtime in list(services.blobs.uploads()):
        if upload_id not in known and mtime < real_cutoff:
            services.blobs.discard(upload_id)
            counts["orphan_files"] += 1

    counts["links"] = services.db.run(lambda session: drop_unreferenced_links(session, cutoff=cutoff), write=True)
    counts["blobs"] = delete_orphan_blobs(services)
    if any(counts.values()):
        log.info("garbage collected %s", counts)
    return counts


def drop_unreferenced_links(
    session: Session, *, cutoff: float | None = None, repository_id: int | None = None,
    digests: list[str] | None = None,
) -> int:
    """Unlink blobs from repositories in which no image references them any more.

    The collector passes an age ``cutoff`` (a freshly uploaded layer waits for its manifest);
    lifecycle expiry passes the exact blobs of the images it just removed.
    """
    referenced = (
        exists()
        .where(ImageBlob.digest == RepositoryBlob.digest)
        .where(Image.id == ImageBlob.image_id)
        .where(Image.repository_id == RepositoryBlob.repository_id)
    )
    stmt = select(RepositoryBlob).where(~referenced)
    if cutoff is not None:
        stmt = stmt.where(RepositoryBlob.created_at < cutoff)
    if repository_id is not None:
        stmt = stmt.where(RepositoryBlob.repository_id == repository_id)
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

    def blobs(session: Session) -> int:
        linked = exists().where(RepositoryBlob.digest == Blob.digest)
        used = exists().where(ImageBlob.digest == Blob.digest)
        stmt = select(Blob).where(~linked, ~used)
        if digests is not None:
            stmt = stmt.where(Blob.digest.in_(digests))
        rows = list(session.scalars(stmt))
        for row in rows:
            session.delete(row)
        session.flush()
        for row in rows:  # still inside the write transaction: see the module docstring
            services.blobs.delete(row.digest)
        return len(rows)

    return services.db.run(blobs, write=True)


@jobs.handler("gc")
def _gc_job(services: Services, payload: dict) -> None:
    collect(services)


jobs.periodic("gc", "gc", lambda services: min(GC_INTERVAL, max(services.settings.upload_gc_age / 4, 1.0)))
