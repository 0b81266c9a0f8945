"""``lastRecordedPullTime``, written behind the pulls rather than by them.

A pull (a registry manifest GET, BatchGetImage) is a read. Writing its time in the pull's own
request made every pull wait for the database's write lock: behind pushes on SQLite (its
single writer), and not at all when the disk is full, where pulls of existing images then
failed. So a pull only notes the time in this process and wakes a writer thread, which writes
every note taken so far in one short transaction. The writer gathers notes for ``BATCH_WINDOW``
after the first one wakes it, so a stream of pulls costs one write per window rather than
one per pull (each a write transaction competing with pushes for SQLite's lock); under load,
notes also pile up while the writer waits for the lock and go in together, however many pulls
they stand for. If the write fails (a full disk) the notes are kept and tried again every
``RETRY_INTERVAL``; pulls never notice.

What this costs: a pull's time reaches DescribeImages up to half a second later (ECR itself
refreshes it lazily, "at least once every 24 hours"), and a process killed with ``kill -9``
loses the notes not yet written. A lifecycle run in this process writes the notes first.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import bindparam, exists, update

from ecr_emulator.storage.db import Database
from ecr_emulator.storage.models import Image, PullTimeExclusion, Repository

log = logging.getLogger(__name__)

RETRY_INTERVAL = 1.0
BATCH_WINDOW = 0.5  # seconds the writer gathers notes before writing them
# A pull is noted again only when the stored time is older than this (seconds).
RESOLUTION = 1.0
MAX_PENDING = 100_000  # notes kept while the database cannot be written; the oldest are dropped beyond

# A pull by a principal the image's registry excludes from pull-time updates
# (RegisterPullTimeUpdateExclusion) is dropped here, by the writer, off the pull's path.
_EXCLUDED = (
    exists()
    .where(Repository.id == Image.repository_id)
    .where(PullTimeExclusion.account_id == Repository.account_id, PullTimeExclusion.region == Repository.region)
    .where(PullTimeExclusion.principal_arn == bindparam("principal"))
)
_RECORD = (
    update(Image)
    .where(Image.id == bindparam("image_id"), Image.digest == bindparam("image_digest"))
    .where(Image.last_pulled_at.is_(None) | (Image.last_pulled_at < bindparam("pulled_at")))
    .where(~_EXCLUDED)
    .values(last_pulled_at=bindparam("pulled_at"))
)


def due(last_pulled_at: float | None, now: float) -> bool:
    """Whether a pull at ``now`` should be noted, given the time already stored."""
    return last_pulled_at is None or last_pulled_at < now - RESOLUTION


class PullRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, str, str], float] = {}  # (image id, digest, principal's IAM ARN) -> time
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, images: list[tuple[int, str]], when: float, principal_arn: str) -> None:
        """Remember that ``principal_arn`` (the IAM user or role, ``Principal.entity_arn``) pulled
        these images, each (id, digest), at ``when``. The digest keeps a note that is written
        after its image was deleted (or the registry reset) off a newer image given the same id.
        Without a background writer in this process (a command, a test harness) the note is
        written at once."""
        if not images:
            return
        with self._lock:
            for image_id, digest in images:
                key = (image_id, digest, principal_arn)
                if self._pending.get(key, 0.0) < when:
                    self._pending[key] = when
        if self._thread is None:
            self.flush()
        else:
            self._wake.set()

    def flush(self) -> int:
        """Write every note now. Returns how many were written (0 when the write failed)."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return 0
        rows = [{"image_id": i, "image_digest": d, "principal": p, "pulled_at": t} for (i, d, p), t in batch.items()]
        try:
            self._db.run(lambda session: session.connection().execute(_RECORD, rows), write=True)
        except Exception as exc:  # the pulls succeeded; their times wait for a later flush
            log.warning("could not record %d pull times yet: %s", len(rows), exc)
            with self._lock:
                for key, when in batch.items():
                    if self._pending.get(key, 0.0) < when:
                        self._pending[key] = when
                excess = len(self._pending) - MAX_PENDING
                for key in sorted(self._pending, key=self._pending.__getitem__)[:max(excess, 0)]:
                    del self._pending[key]
            return 0
        return len(rows)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="pull-times", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the writer, writing what is left."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(10)
        self.flush()

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._wake.wait(RETRY_INTERVAL):  # a note wakes it; the timeout retries a failed write
                self._stop.wait(BATCH_WINDOW)  # gather the pulls that follow it (a stop cuts this short)
            self._wake.clear()
            self.flush()
