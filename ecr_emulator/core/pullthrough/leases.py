"""One fetch of one upstream reference at a time, across threads, processes and replicas.

A fetch holds a lease: a row of ``upstream_fetches`` keyed by what it fetches, with a token and
an expiry on real time (the emulator clock is moved by days in tests), renewed by a thread while
the fetch runs. Everyone else who wants the same thing waits, polling the database: once what
they wanted is there (``done()``) they use it; if the lease runs out instead (its holder died, or
failed and let go) one of them takes it and fetches. So twenty pulls of one uncached tag, in any
worker process of any replica, fetch each manifest and blob from upstream once.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from ecr_emulator.core.pullthrough.client import NOT_FOUND, UNAVAILABLE, UpstreamError
from ecr_emulator.storage.db import Database
from ecr_emulator.storage.models import UpstreamFetch
from ecr_emulator.storage.sql import insert_ignore

log = logging.getLogger(__name__)

LEASE_SECONDS = 30.0
RENEW_SECONDS = 5.0
POLL_SECONDS = 0.1
MAX_WAIT = 1800.0  # a waiter gives up after this long even if the holder keeps renewing
_held = threading.local()  # what this thread holds: a fetch that needs itself is a cycle of rules


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _free(session: Session, key: str) -> bool:
    row = session.get(UpstreamFetch, key)
    return row is None or row.lease_until < time.time()


def _take(session: Session, key: str, token: str) -> bool:
    now = time.time()
    row = session.get(UpstreamFetch, key, with_for_update=True)
    if row is None:
        return insert_ignore(session, UpstreamFetch, {"key": key, "lease_token": token,
                                                      "lease_until": now + LEASE_SECONDS})
    if row.lease_until >= now:
        return False
    taken = session.execute(update(UpstreamFetch)
                            .where(UpstreamFetch.key == key, UpstreamFetch.lease_token == row.lease_token)
                            .values(lease_token=token, lease_until=now + LEASE_SECONDS))
    return taken.rowcount == 1


class _Renewer(threading.Thread):
    def __init__(self, db: Database, key: str, token: str) -> None:
        super().__init__(name="upstream-fetch-lease", daemon=True)
        self.db, self.key, self.token = db, key, token
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(RENEW_SECONDS):
            try:
                self.db.run(lambda s: s.execute(
                    update(UpstreamFetch).where(UpstreamFetch.key == self.key, UpstreamFetch.lease_token == self.token)
                    .values(lease_until=time.time() + LEASE_SECONDS)), write=True)
            except Exception as exc:  # noqa: BLE001 - the next beat tries again
                log.warning("could not renew the lease of an upstream fetch: %s", exc)


@contextmanager
def hold(db: Database, what: str, done: Callable[[], bool]) -> Iterator[bool]:
    """Yields True holding the lease on ``what`` (check ``done()`` again: another holder may have
    finished just before), or False once ``done()`` says another holder fetched it."""
    key, token = _key(what), uuid.uuid4().hex
    mine: set[str] = _held.__dict__.setdefault("keys", set())
    if key in mine:  # A caches from B, which caches from A: this thread would wait for itself
        raise UpstreamError(NOT_FOUND, f"{what}: pull through cache rules lead back to this registry")
    deadline = time.monotonic() + MAX_WAIT
    while True:
        if done():
            yield False
            return
        if db.run(lambda s: _free(s, key)) and db.run(lambda s: _take(s, key, token), write=True):
            break
        if time.monotonic() > deadline:
            raise UpstreamError(UNAVAILABLE, f"another fetch of {what} did not finish within {MAX_WAIT:.0f} s")
        time.sleep(POLL_SECONDS)
    renewer = _Renewer(db, key, token)
    renewer.start()
    mine.add(key)
    try:
        yield True
    finally:
        mine.discard(key)
        renewer.stopped.set()
        try:
            db.run(lambda s: s.execute(delete(UpstreamFetch).where(UpstreamFetch.key == key,
                                                                   UpstreamFetch.lease_token == token)), write=True)
        except Exception as exc:  # noqa: BLE001 - the lease then simply runs out
            log.warning("could not give back the lease of an upstream fetch: %s", exc)
