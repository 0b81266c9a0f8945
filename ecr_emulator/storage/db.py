"""Engine, sessions and the one-transaction-per-request rule.

SQLite (the embedded default) runs in WAL mode so readers never wait for the writer. A
transaction that will write starts with ``BEGIN IMMEDIATE``: it takes the write lock up front
and waits for it (busy timeout) instead of failing half-way when a read transaction tries to
upgrade. Read-only transactions use a plain ``BEGIN`` and run concurrently. On PostgreSQL the
same code runs with ordinary transactions; writers serialise per repository with row locks.
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

_WRITE = "ecr_write"
_BUSY_RETRIES = 5
BUSY_SECONDS = 30  # how long a writer waits for SQLite's write lock
# PostgreSQL SQLSTATEs after which the same transaction, run again, gets a consistent answer:
# unique and foreign-key violations (a concurrent writer created or removed the row first),
# serialization failures and deadlocks.
_RETRYABLE_PG_STATES = {"23505", "23503", "40001", "40P01"}


class Database:
    def __init__(self, url: str, pool_size: int = 20) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("sqlite:///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine = create_engine(
                url,
                connect_args={"check_same_thread": False, "timeout": BUSY_SECONDS},
                pool_size=pool_size,
                max_overflow=pool_size,
                # The connection used last is handed out next. Each SQLite connection keeps its own
                # page cache, valid only until another connection writes; taken in turn (FIFO) every
                # request got a connection whose cache another had made stale and read its pages
                # again: 14 preads a registry request, against 0.4 with LIFO.
                pool_use_lifo=True,
            )
            _configure_sqlite(self.engine)
            self._writers: _Writers | None = _Writers(path if path and path != ":memory:" else None)
        else:
            self._writers = None
            self.engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self._sessions = sessionmaker(expire_on_commit=False, autoflush=True)
        self._idle = threading.local()  # closed sessions, per thread (_session)

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Session]:
        """One transaction: commit on success, roll back everything on any exception."""
        if write and self._writers is not None:
            with self._writers.turn(), self._transaction(write) as session:
                yield session
        else:
            with self._transaction(write) as session:
                yield session

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Session]:
        with self.engine.connect() as conn:
            info = conn.connection.info  # read by BEGIN on SQLite (_configure_sqlite)
            info[_WRITE] = write
            session = self._session(conn)
            try:
                with session.begin():
                    yield session
            finally:
                session.close()
                info[_WRITE] = False
                self._give_back(session)

    def _session(self, conn: Any) -> Session:
        """A closed session of this thread's (closed: holding no objects, connection nor
        transaction), bound to ``conn``, else a new one. Building a Session was a fifth of an
        empty transaction's 130 us; a closed one is meant to be used again."""
        idle = getattr(self._idle, "sessions", None)
        if idle:
            session = idle.pop()
            session.bind = conn
            return session
        return self._sessions(bind=conn)

    def _give_back(self, session: Session) -> None:
        session.bind = None
        idle = getattr(self._idle, "sessions", None)
        if idle is None:
            idle = self._idle.sessions = []
        if len(idle) < 2:  # a unit opened inside another one uses a second session
            idle.append(session)

    def run(self, fn, write: bool = False):  # type: ignore[no-untyped-def]
        """Run ``fn(session)`` in a transaction, again when a concurrent writer got in the way
        (``is_retryable``). Only transactions without effects outside the database may be run
        this way."""
        return retrying(lambda: self._once(fn, write))

    def _once(self, fn, write: bool):  # type: ignore[no-untyped-def]
        with self.transaction(write=write) as session:
            return fn(session)

    def fixed_scalar(self, sql: str, session: Session | None = None) -> Any:
        """The first value a fixed, parameterless SELECT returns, run on a bare DBAPI cursor (in
        ``session``'s transaction when given). For the read every request makes (the emulator
        clock): measured on SQLite, 7-33 us this way against 300-1,100 us through the ORM and a
        transaction of its own."""
        if session is not None:
            return _first(session.connection().connection.dbapi_connection, sql)
        conn = self.engine.raw_connection()
        try:
            return _first(conn, sql)
        finally:
            conn.close()

    def dispose(self) -> None:
        self.engine.dispose()


class _Writers:
    """The queue of SQLite write transactions: one writer at a time, woken as soon as its turn comes.

    SQLite's own wait for its write lock polls, sleeping 1, 2, 5, 10 ... up to 100 ms between
    tries, so concurrent writers mostly slept while the lock stood free (16 concurrent PutImage
    calls ran no faster than one). Here every writer, in any thread of any process using the
    database (the server's workers, a command beside them), first takes an ``flock`` of a file
    beside the database: the kernel hands it to a waiter the moment it is released, and releases
    it by itself when a process dies. SQLite's lock still decides; this only lines writers up,
    so a writer that cannot create the file just goes on to SQLite's wait. A thread already
    inside a write transaction does not queue again (SQLite's busy timeout answers a nested
    writer, as before). A writer waits as long as the one ahead of it takes, rather than fail
    after ``BUSY_SECONDS`` as SQLite's wait does.
    """

    def __init__(self, database_path: str | None) -> None:
        self._held = threading.local()
        self._lock_path = f"{database_path}-writer" if database_path else None

    @contextmanager
    def turn(self) -> Iterator[None]:
        if self._lock_path is None or getattr(self._held, "inside", False):
            yield
            return
        fd = _locked(self._lock_path)
        self._held.inside = True
        try:
            yield
        finally:
            self._held.inside = False
            if fd is not None:
                os.close(fd)  # releases the lock


def _locked(path: str) -> int | None:
    """An open descriptor of ``path`` holding its exclusive flock (None where it cannot be had)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # retried by Python on EINTR
    except OSError:
        os.close(fd)
        return None
    return fd


def _first(dbapi_connection, sql: str) -> Any:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else row[0]


def retrying(attempt, on_retry=None):  # type: ignore[no-untyped-def]
    """Call ``attempt()`` until it returns, repeating it (after ``on_retry()``) while it fails
    with a retryable database error; the last failure propagates."""
    for n in range(_BUSY_RETRIES):
        try:
            return attempt()
        except DBAPIError as exc:
            if not is_retryable(exc) or n == _BUSY_RETRIES - 1:
                raise
            log.info("transaction met a concurrent writer, running it again (%s)", type(exc.orig).__name__)
            if on_retry is not None:
                on_retry()
            time.sleep(random.uniform(0.005, 0.03) * (n + 1))
    raise AssertionError("unreachable")


def is_retryable(exc: BaseException) -> bool:
    """Whether ``exc`` means "a concurrent transaction got there first": running the whole unit
    of work again sees that transaction's result and answers as if the two had queued."""
    if not isinstance(exc, DBAPIError):
        return False
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    if state is not None:
        return state in _RETRYABLE_PG_STATES
    if isinstance(exc, OperationalError):
        return _is_busy(exc)
    return isinstance(exc, IntegrityError) and "constraint failed" in str(exc.orig).lower()


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
    return "locked" in text or "busy" in text


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
        cur.close()

    # We emit BEGIN ourselves, in the dialect's begin step rather than in a "begin" event: the
    # event ran BEGIN through SQLAlchemy's whole statement machinery (a quarter of a small
    # transaction's cost), and any engine event makes every later statement dispatch events.
    # A failure here is wrapped like any statement's (a busy database is retried).
    def do_begin(dbapi_connection):  # type: ignore[no-untyped-def]
        dbapi_connection.driver_connection.execute("BEGIN IMMEDIATE" if dbapi_connection.info.get(_WRITE) else "BEGIN")

    engine.dialect.do_begin = do_begin  # type: ignore[method-assign]
