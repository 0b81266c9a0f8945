"""A throwaway PostgreSQL cluster for running the suite against the PostgreSQL backend.

`ECR_TEST_BACKEND=postgres pytest` starts one cluster (initdb into a temporary directory, a
free loopback port, trust auth), gives every test server its own database, and stops the
cluster at the end. PostgreSQL refuses to run as root, so as root it runs as `postgres`.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if not found:
        raise RuntimeError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return found


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class Cluster:
    def __init__(self, fsync: bool = False) -> None:
        """``fsync`` off (the suite's default) trades durability, which no test needs, for speed."""
        self.root = Path(tempfile.mkdtemp(prefix="ecr-pg-"))
        self.data = self.root / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        subprocess.run(_as_owner([_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                                  "-E", "UTF8"]), check=True, capture_output=True)
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not fsync:
            options += " -c fsync=off"
        subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l",
                                  str(self.root / "log"), "-w", "start"]), check=True, capture_output=True)

    @property
    def base_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def new_database(self) -> str:
        name = "ecr_" + uuid.uuid4().hex[:12]
        subprocess.run(_as_owner([_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                                  name]), check=True, capture_output=True)
        return f"{self.base_url}/{name}"

    def stop(self) -> None:
        subprocess.run(_as_owner([_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]), capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


CLUSTER: Cluster | None = None
_BY_KEY: dict[str, str] = {}


def database_url(key: str) -> str | None:
    """The database of one data directory (``key``) when the suite runs against PostgreSQL,
    created on first use so a restarted server finds its data again; None means SQLite."""
    global CLUSTER
    if os.environ.get("ECR_TEST_BACKEND") != "postgres":
        return None
    if CLUSTER is None:
        CLUSTER = Cluster()
        atexit.register(stop)  # also when the run ends without the session fixture's teardown
    if key not in _BY_KEY:
        _BY_KEY[key] = CLUSTER.new_database()
    return _BY_KEY[key]


def new_database() -> str:
    """A fresh database on the suite's cluster, started now if the suite runs on SQLite (for
    tests that need PostgreSQL whatever the backend, such as replicas on several hosts)."""
    global CLUSTER
    if CLUSTER is None:
        CLUSTER = Cluster()
        atexit.register(stop)
    return CLUSTER.new_database()


def stop() -> None:
    global CLUSTER
    if CLUSTER is not None:
        CLUSTER.stop()
        CLUSTER = None
