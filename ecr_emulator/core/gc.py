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

    def links(session) -> int:  # type: ignore[no-untyped-def]
        referenced = (
            exists()
            .where(ImageBlob.digest == RepositoryBlob.digest)
            .where(Image.id == ImageBlob.image_id)
            .where(Image.repository_id == RepositoryBlob.repository_id)
        )
        rows = list(session.scalars(select(RepositoryBlob).where(RepositoryBlob.created_at < cutoff, ~referenced)))
        for row in rows:
            session.delete(row)
        return len(rows)

    counts["links"] = services.db.run(links, write=True)

    def blobs(session) -> int:  # type: ignore[no-untyped-def]
        linked = exists().where(RepositoryBlob.digest == Blob.digest)
        used = exists().where(ImageBlob.digest == Blob.digest)
        rows = list(session.scalars(select(Blob).where(~linked, ~used)))
        for row in rows:
            session.delete(row)
        session.flush()
        for row in rows:  # still inside the write transaction: see the module docstring
            services.blobs.delete(row.digest)
        return len(rows)

    counts["blobs"] = services.db.run(blobs, write=True)
    if any(counts.values()):
        log.info("garbage collected %s", counts)
    return counts


@jobs.handler("gc")
def _gc_job(services: Services, payload: dict) -> None:
    collect(services)


jobs.periodic("gc", "gc", lambda services: min(GC_INTERVAL, max(services.settings.upload_gc_age / 4, 1.0)))
