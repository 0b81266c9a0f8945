"""Who may append to an upload right now: a lease in the upload's row, on real time.

A registry PATCH streams for as long as its client sends, with no database transaction open
(SQLite's single writer must never wait on a network). So the right to append is a lease: a
short transaction takes it when it is free or has run out, this process's keeper thread renews
every lease the process holds every ``RENEW_SECONDS``, and the transaction that records the
append checks that the lease is still the writer's. The staged bytes are fenced the same way
(an append writes only new segments, see ``storage.blobstore``), so a writer that lost its lease
changes nothing anyone recorded. When a replica dies mid-PATCH its leases run out within
``LEASE_SECONDS`` and another replica continues the upload from what was recorded.

Leases are on real time, not on the emulator clock, which tests move by days.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ecr_emulator.storage.db import Database
from ecr_emulator.storage.models import Upload

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0
RENEW_SECONDS = 3.0
POLL_SECONDS = 0.05

# Built once: every registry PATCH takes a lease and records under it (see core/repositories.py).
_ROW = select(Upload).where(Upload.id == bindparam("upload")).with_for_update()
_RECORD = (update(Upload)
           .where(Upload.id == bindparam("upload"), Upload.lease_token == bindparam("token"))
           .values(lease_token=None, lease_until=None))
_GIVE_BACK = (update(Upload).where(Upload.lease_token == bindparam("token"))
              .values(lease_token=None, lease_until=None))
_RENEW = (update(Upload).where(Upload.lease_token.in_(bindparam("tokens", expanding=True)))
          .values(lease_until=bindparam("until")))


class UploadBusy(Exception):
    """Another request is appending to the upload (and kept its lease past our wait), or took
    the upload over while this one was writing."""


def is_leased(upload: Upload) -> bool:
    return upload.lease_token is not None and (upload.lease_until or 0.0) > time.time()


@dataclass
class Held:
    """A lease this request holds, and the upload as recorded when it was taken."""

    db: Database
    token: str
    upload_id: str
    repository_id: int
    size: int
    segments: list[list[Any]]
    hash_state: bytes | None
    recorded: bool = field(default=False)

    def record(self, **values: Any) -> bool:
        """Write the append's result and give the lease back, if the lease is still ours;
        False if the upload was committed, cancelled or taken over meanwhile."""

        def write(session: Session) -> bool:
            params = {"upload": self.upload_id, "token": self.token, **values}
            return session.connection().execute(_RECORD, params).rowcount == 1

        self.recorded = self.db.run(write, write=True)
        return self.recorded


class _Keeper:
    """Renews this process's leases in one statement every RENEW_SECONDS."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, Database] = {}
        self._pid = 0

    def add(self, token: str, db: Database) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first lease in this process (or a fork's child)
                self._pid = os.getpid()
                self._held.clear()
                threading.Thread(target=self._run, name="upload-leases", daemon=True).start()
            self._held[token] = db

    def remove(self, token: str) -> None:
        with self._lock:
            self._held.pop(token, None)

    def _run(self) -> None:
        while True:
            time.sleep(RENEW_SECONDS)
            with self._lock:
                by_db: dict[int, tuple[Database, list[str]]] = {}
                for token, db in self._held.items():
                    by_db.setdefault(id(db), (db, []))[1].append(token)
            for db, tokens in by_db.values():
                try:
                    db.run(lambda s, t=tokens: s.connection().execute(
                        _RENEW, {"tokens": t, "until": time.time() + LEASE_SECONDS}), write=True)
                except Exception as exc:  # noqa: BLE001 - the next beat tries again; a lost lease is detected on record
                    log.warning("could not renew upload leases: %s", exc)


_KEEPER = _Keeper()


def _take(session: Session, upload_id: str, token: str, db: Database) -> Held | None:
    row = session.scalars(_ROW, {"upload": upload_id}).first()
    if row is None:
        raise FileNotFoundError(upload_id)
    if is_leased(row):
        return None
    row.lease_token, row.lease_until = token, time.time() + LEASE_SECONDS
    return Held(db, token, row.id, row.repository_id, row.size, list(row.segments or []), row.hash_state)


@contextmanager
def hold(db: Database, upload_id: str, wait: float = LEASE_SECONDS + 2) -> Iterator[Held]:
    """Hold the upload's lease for the block, waiting up to ``wait`` seconds for another
    request's lease to end (a dead replica's runs out within LEASE_SECONDS). Raises
    FileNotFoundError if the upload does not exist, UploadBusy if the lease stayed taken."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + wait
    while True:
        held = db.run(lambda s: _take(s, upload_id, token, db), write=True)
        if held is not None:
            break
        if time.monotonic() > deadline:
            raise UploadBusy(f"another request is writing to upload {upload_id}")
        time.sleep(POLL_SECONDS)
    _KEEPER.add(token, db)
    try:
        yield held
    finally:
        _KEEPER.remove(token)
        if not held.recorded:
            try:
                db.run(lambda s: s.connection().execute(_GIVE_BACK, {"token": token}), write=True)
            except Exception as exc:  # noqa: BLE001 - the lease then simply runs out
                log.warning("could not give back the lease of upload %s: %s", upload_id, exc)
