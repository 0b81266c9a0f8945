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
import mmap
import os
import struct
import threading
import time
from pathlib import Path

_FORMAT = "<d"
_SIZE = struct.calcsize(_FORMAT)


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
        return struct.unpack_from(_FORMAT, self._map)[0]

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
        self._update(lambda _old: float(epoch_seconds) - time.time())
        return self.now()

    def advance(self, seconds: float) -> float:
        self._update(lambda old: old + float(seconds))
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
