"""The per-run directory where prometheus_client's multiprocess mode keeps each worker's values.

Counters and histograms of every gunicorn worker live in memory-mapped files there, and a
scrape served by any worker adds them up. prometheus_client chooses that mode when it is first
imported, from ``PROMETHEUS_MULTIPROC_DIR``; so the server calls ``start()`` before anything
imports ``ecr_emulator.metrics`` (this module imports nothing of prometheus_client at import).
Each run gets a fresh private directory (replicas sharing a data directory keep their own
counts), removed when the server exits. A directory the user set in the variable is used
instead, emptied at start and kept.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


class Run:
    def __init__(self) -> None:
        self.owner = os.getpid()
        given = os.environ.get(ENV)
        if given:
            self.path, self.remove = Path(given), False
            self.path.mkdir(parents=True, exist_ok=True)
            for stale in self.path.glob("*.db"):  # counts of an earlier run are not this run's
                stale.unlink()
        else:
            self.path, self.remove = Path(tempfile.mkdtemp(prefix="ecr-emulator-metrics-")), True
            os.environ[ENV] = str(self.path)

    def worker_exited(self, pid: int) -> None:
        """In the arbiter, when a worker has gone: drop what only a live process may report."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(self.path))

    def finish(self) -> None:
        """At server exit (a worker leaving through the same stack does nothing)."""
        if os.getpid() == self.owner and self.remove:
            shutil.rmtree(self.path, ignore_errors=True)
