"""A real upstream registry for pull-through-cache tests: CNCF Distribution (Debian's
``docker-registry``) on a free loopback port with its own config file, open or behind htpasswd
(bcrypt) Basic auth, its access log kept so tests can count what was fetched from it. Seeded
with skopeo from OCI layouts built by ``tests/images.py``. Stopped by PID."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import requests

from tests.images import Image, write_oci_layout
from tests.tools import run

DISTRIBUTION = "/usr/bin/docker-registry"
_REQUEST = re.compile(r'"(GET|HEAD) (/v2/[^ ?"]*)[^"]*" (\d{3})')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Upstream:
    process: subprocess.Popen
    port: int
    workdir: Path
    log_path: Path
    user: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)

    def restart(self) -> None:
        """Start it again on the same port and storage (after ``stop``: an upstream that was down)."""
        self.process = _spawn(self.workdir, self.log_path)
        _wait(self)

    def requests(self, method: str = "GET", path_part: str = "", status: str | None = "200") -> list[str]:
        """Paths of the requests its access log shows (method, a path substring, a status)."""
        out = []
        for m in _REQUEST.finditer(self.log_path.read_text(errors="replace")):
            if m[1] == method and path_part in m[2] and (status is None or m[3] == status):
                out.append(m[2])
        return out

    def auth(self) -> dict[str, str]:
        if not self.user:
            return {}
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def push(self, images: dict[str, Image], repository: str, workdir: Path) -> None:
        """Copy ``images`` (tag -> image; indexes with all their children) into ``repository``."""
        layout = write_oci_layout(workdir / f"seed-{os.urandom(4).hex()}", images)
        creds = ["--dest-creds", f"{self.user}:{self.password}"] if self.user else []
        for tag in images:
            run("skopeo", "copy", "--all", "--dest-tls-verify=false", *creds, f"oci:{layout}:{tag}",
                f"docker://{self.host}/{repository}:{tag}")

    def delete_tag(self, repository: str, tag: str) -> None:
        """Remove a tag's manifest upstream (the image disappears there)."""
        head = requests.head(f"{self.url}/v2/{repository}/manifests/{tag}", headers={
            **self.auth(), "Accept": "application/vnd.oci.image.index.v1+json, "
                                     "application/vnd.oci.image.manifest.v1+json"}, timeout=30)
        digest = head.headers["Docker-Content-Digest"]
        r = requests.delete(f"{self.url}/v2/{repository}/manifests/{digest}", headers=self.auth(), timeout=30)
        assert r.status_code == 202, r.text


def _spawn(workdir: Path, log_path: Path) -> subprocess.Popen:
    # AWS_CA_BUNDLE (set on some machines) makes its AWS SDK refuse to start; no TLS is used here
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    out = open(log_path, "ab")
    return subprocess.Popen([DISTRIBUTION, "serve", str(workdir / "config.yml")], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True, env=env)


def _wait(upstream: Upstream, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if upstream.process.poll() is not None:
            raise RuntimeError(f"Distribution exited early:\n{upstream.log_path.read_text(errors='replace')}")
        try:
            requests.get(f"{upstream.url}/v2/", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"Distribution did not answer:\n{upstream.log_path.read_text(errors='replace')}")


def start(workdir: Path, user: str | None = None, password: str | None = None) -> Upstream:
    """Distribution on a free loopback port, filesystem storage under ``workdir``, deletes enabled,
    its access log on; with ``user`` and ``password`` behind htpasswd Basic auth (bcrypt line)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    auth = ""
    if user:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        (workdir / "htpasswd").write_text(f"{user}:{hashed}\n")
        auth = f"auth:\n  htpasswd:\n    realm: upstream\n    path: {workdir / 'htpasswd'}\n"
    (workdir / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: false\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"{auth}"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log_path = workdir / "access.log"
    upstream = Upstream(_spawn(workdir, log_path), port, workdir, log_path, user, password)
    try:
        _wait(upstream)
    except Exception:
        upstream.stop()
        raise
    return upstream
