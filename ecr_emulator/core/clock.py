"""The one clock every time-dependent rule reads (token expiry, lifecycle ages, scan quotas, jobs).

Tests move it through the control API instead of sleeping. It keeps running: setting or
advancing it shifts an offset from real time, so consecutive events still get distinct,
ordered timestamps.
"""

from __future__ import annotations

import threading
import time


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the epoch, as ECR timestamps are expressed on the wire."""
        return time.time() + self._offset

    def set(self, epoch_seconds: float) -> float:
        with self._lock:
            self._offset = float(epoch_seconds) - time.time()
        return self.now()

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._offset += float(seconds)
        return self.now()

    def reset(self) -> float:
        with self._lock:
            self._offset = 0.0
        return self.now()

    @property
    def offset(self) -> float:
        return self._offset
