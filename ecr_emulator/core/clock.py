"""The one clock every time-dependent rule reads (token expiry, lifecycle ages, scan quotas, jobs).

Tests move it through the control API instead of sleeping. It keeps running: setting or
advancing it shifts an offset from real time, so consecutive events still get distinct,
ordered timestamps.

The offset lives in the database (``emulator_state``), so every process and every replica on
any host reads the same emulator time, and a restart keeps the time the user moved to. A
request reads it inside its own transaction (one small query, or a column of the authorization
read that opens the unit: ``OFFSET``); without a database (pure unit tests) it is kept in
memory. The read is a bare cursor on a fixed statement: tens of microseconds instead of the
~1 ms a transaction through the ORM took, which had halved manifest GETs/s.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecr_emulator.storage.db import Database
from ecr_emulator.storage.models import EmulatorState

MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z: the last instant ECR's timestamps can name
KEY = "clock_offset"


def _finite(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("clock values must be numbers")
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise ValueError("clock values must be finite numbers")
    return out


def _checked(epoch: float) -> float:
    """A time the clock may show: finite and between 1970 and the year 9999."""
    value = _finite(epoch)
    if not 0 <= value <= MAX_EPOCH:
        raise ValueError(f"the clock must stay between 0 and {MAX_EPOCH:.0f} (epoch seconds)")
    return value


_READ = f"SELECT value FROM emulator_state WHERE name = '{KEY}'"  # noqa: S608 - a constant
# The same read as a column of another statement: the authorization read that opens nearly every
# unit carries it (``core/access.py``), so the unit's clock costs no statement of its own.
OFFSET = select(EmulatorState.value).where(EmulatorState.name == KEY).scalar_subquery()


def _parsed(value: str | None) -> float:
    try:
        offset = float(value) if value is not None else 0.0
    except ValueError:
        return 0.0
    return offset if math.isfinite(offset) else 0.0


def _stored(session: Session) -> float:
    row = session.get(EmulatorState, KEY)
    return _parsed(None if row is None else row.value)


class Clock:
    def __init__(self, db: Database | None = None) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._offset = 0.0

    def offset_in(self, session: Session | None = None) -> float:
        """The offset, read in ``session``'s transaction when given (no extra connection)."""
        if self._db is None:
            return self._offset
        return _parsed(self._db.fixed_scalar(_READ, session))

    def _update(self, change) -> float:  # type: ignore[no-untyped-def]
        """Apply ``change(old_offset) -> new_offset`` atomically across threads, processes and replicas."""
        if self._db is None:
            with self._lock:
                self._offset = change(self._offset)
                return self._offset

        def write(session: Session) -> float:
            row = session.get(EmulatorState, KEY, with_for_update=True)
            new = change(_stored(session))
            if row is None:
                session.add(EmulatorState(name=KEY, value=repr(new)))
            else:
                row.value = repr(new)
            return new

        return self._db.run(write, write=True)

    def now(self, session: Session | None = None) -> float:
        """Seconds since the epoch, as ECR timestamps are expressed on the wire."""
        return time.time() + self.offset_in(session)

    def now_from(self, stored: str | None) -> float:
        """``now()`` given the offset's stored value as a statement's ``OFFSET`` column read it."""
        return time.time() + (_parsed(stored) if self._db is not None else self._offset)

    def set(self, epoch_seconds: float) -> float:
        """Move the clock to ``epoch_seconds`` (ValueError for a time it cannot show)."""
        target = _checked(epoch_seconds)
        self._update(lambda _old: target - time.time())
        return self.now()

    def advance(self, seconds: float) -> float:
        """Move the clock forward (or back) by ``seconds`` (ValueError past its range)."""
        step = _finite(seconds)

        def change(old: float) -> float:
            _checked(time.time() + old + step)
            return old + step

        self._update(change)
        return self.now()

    def reset(self) -> float:
        self._update(lambda _old: 0.0)
        return self.now()

    @property
    def offset(self) -> float:
        return self.offset_in()

    def adopt_file(self, path: Path) -> None:
        """Take over the offset an earlier version kept in ``<data dir>/clock`` (a memory-mapped
        double), once, if the database has none yet."""
        if self._db is None or not path.is_file():
            return
        try:
            (offset,) = struct.unpack("<d", path.read_bytes()[:8])
        except (OSError, struct.error):
            return
        if math.isfinite(offset) and self._db.run(lambda s: s.get(EmulatorState, KEY)) is None:
            self._update(lambda old: offset if old == 0.0 else old)
        path.unlink(missing_ok=True)

    def close(self) -> None:
        """Nothing to release: kept so callers need not know where the offset lives."""
