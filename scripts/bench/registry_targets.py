"""Benchmark plumbing: start ecr-emulator and CNCF Distribution on loopback, stop them by PID.

Used by scripts/bench/registry.py.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MIB = 1024 * 1024
REPO = "bench/registry"
TAG = "small"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DISTRIBUTION = "/usr/bin/docker-registry"
REGION = "us-east-1"
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for tests.server

# ---------------------------------------------------------------- targets and processes


@dataclass
class Target:
    """One registry under test: where it listens and which headers every request carries."""

    name: str
    host: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def curl_headers(self) -> list[str]:
        args: list[str] = []
        for key, value in self.headers.items():
            args += ["-H", f"{key}: {value}"]
        return args


def free_port() -> int:
    """A loopback port nobody listens on right now (Distribution cannot bind port 0 and report it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM the one process we started (by PID), SIGKILL only if it ignores that."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} server exited early:\n{log.read_text(errors='replace')}")
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", parts.path or "/")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s:\n{log.read_text(errors='replace')}")


@contextmanager
def ecr_emulator(workdir: Path, *extra: str, env: dict[str, str] | None = None, name: str = "ecr-emulator",
                 data: str = "ecr-data") -> Iterator[tuple[Target, subprocess.Popen[bytes]]]:
    """Start ``python -m ecr_emulator serve`` on free ports as the test suite does (``extra``
    serve arguments and ``env`` variables added), create the repository unless it exists (a
    replica of another one), log in."""
    from tests.server import make_client, start_server

    live = start_server(workdir / data, *extra, env={
        "ECR_EMULATOR_LOG_LEVEL": os.environ.get("ECR_EMULATOR_LOG_LEVEL", "warning"), **(env or {})})
    try:
        ecr = make_client(live, access_key="bench", region=REGION)
        try:
            ecr.create_repository(repositoryName=REPO)
        except ecr.exceptions.RepositoryAlreadyExistsException:
            pass
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        yield Target(name, "127.0.0.1", live.registry_port, {"Authorization": f"Basic {token}"}), live.process
    finally:
        live.stop()


@contextmanager
def distribution(workdir: Path, storage: str | None = None, name: str = "Distribution") -> Iterator[Target]:
    """Start Distribution with its own config: filesystem storage in ``workdir`` (or the
    ``storage`` driver section given, indented under ``storage:``), no auth, loopback only. The
    system config in /etc/docker/registry is never read or changed."""
    port = free_port()
    if storage is None:
        root = workdir / "distribution-data"
        root.mkdir()
        storage = f"  filesystem:\n    rootdirectory: {root}\n"
    config = workdir / "distribution.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"{storage}"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = workdir / "distribution.log"
    # AWS_CA_BUNDLE (set on some machines) makes its AWS SDK refuse to start; no TLS is used here
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([DISTRIBUTION, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", proc, log)
        yield Target(name, "127.0.0.1", port)
    finally:
        stop(proc)


