"""The one clock every time-dependent rule reads (token expiry, lifecycle ages, scan quotas, jobs).

Tests move it through the control API instead of sleeping. It keeps running: setting or
advancing it shifts an offset from real time, so consecutive events still get distinct,
ordered timestamps.

With a backing file (``<data dir>/clock``) the offset lives in a small memory-mapped file:
every process on the data directory (each server worker, ``ecr-emulator lifecycle run``)
reads the same emulator time, and a restart keeps the time the user moved to. Reading it is
one unpack from shared memory.
"""

from __future__ import annotations

import fcntl
import math
import mmap
import os
import struct
import threading
import time
from pathlib import Path

_FORMAT = "<d"
_SIZE = struct.calcsize(_FORMAT)
MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z: the last instant ECR's timestamps can name


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


class Clock:
    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        if path is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size < _SIZE:
                    os.ftruncate(self._fd, _SIZE)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, _SIZE)

    def _read_offset(self) -> float:
        if self._map is None:
            return self._offset
        offset = struct.unpack_from(_FORMAT, self._map)[0]
        return offset if math.isfinite(offset) else 0.0  # a file written before values were checked

    def _update(self, change) -> float:  # type: ignore[no-untyped-def]
        """Apply ``change(old_offset) -> new_offset`` atomically across threads and processes."""
        with self._lock:
            if self._map is None:
                self._offset = change(self._offset)
                return self._offset
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                new = change(self._read_offset())
                struct.pack_into(_FORMAT, self._map, 0, new)
                return new
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def now(self) -> float:
        """Seconds since the epoch, as ECR timestamps are expressed on the wire."""
        return time.time() + self._read_offset()

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
        return self._read_offset()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
