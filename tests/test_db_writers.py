"""SQLite's writers take turns through a kernel lock (storage/db.py ``_Writers``): across threads and
processes, without deadlocking a nested writer, and never held by a process that died."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ecr_emulator.storage import db as db_module
from ecr_emulator.storage.db import Database


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/ecr.db")
    with database.transaction(write=True) as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    yield database
    database.dispose()


def _insert(db: Database, n: int) -> None:
    with db.transaction(write=True) as session:
        session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": n})


def test_threads_of_a_process_write_one_after_another(db):
    inside, most = [0], [0]
    lock = threading.Lock()

    def writer(base: int) -> None:
        for i in range(20):
            with db.transaction(write=True) as session:
                with lock:
                    inside[0] += 1
                    most[0] = max(most[0], inside[0])
                session.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": base + i})
                time.sleep(0.001)
                with lock:
                    inside[0] -= 1

    threads = [threading.Thread(target=writer, args=(100 * t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most[0] == 1  # one writer at a time, none failed with "database is locked"
    with db.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 160


def test_a_nested_writer_meets_sqlites_timeout_instead_of_waiting_for_itself(tmp_path, monkeypatch):
    """A thread inside a write transaction that opens another one does not queue behind its own
    turn forever: SQLite's busy timeout answers it, as before the queue existed."""
    monkeypatch.setattr(db_module, "BUSY_SECONDS", 0.2)
    database = Database(f"sqlite:///{tmp_path}/nested.db")
    try:
        with database.transaction(write=True) as outer:
            outer.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock is taken
            started = time.monotonic()
            with pytest.raises(OperationalError, match="locked"):
                with database.transaction(write=True) as inner:
                    inner.execute(text("SELECT 1"))
            assert time.monotonic() - started < 10
    finally:
        database.dispose()


def test_a_writer_in_another_process_holds_the_turn_until_it_ends_or_dies(db, tmp_path):
    ready, release = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:  # the other process: take the turn, say so, then hold it until told or killed
        try:
            child = Database(db.url)
            with child.transaction(write=True) as session:
                session.execute(text("INSERT INTO t (n) VALUES (-1)"))
                os.write(ready[1], b"x")
                os.read(release[0], 1)
        finally:
            os._exit(0)
    assert os.read(ready[0], 1) == b"x"
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (_insert(db, 1), done.set()))
    waiter.start()
    assert not done.wait(0.5)  # queued behind the other process (not failed, not slept past it)
    os.kill(pid, signal.SIGKILL)  # dies holding it: the kernel releases the lock, SQLite rolls back
    os.waitpid(pid, 0)
    assert done.wait(30)
    waiter.join()
    with db.transaction() as session:
        assert [r[0] for r in session.execute(text("SELECT n FROM t"))] == [1]
