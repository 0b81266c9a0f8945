"""Start and stop a live ecr-emulator on ephemeral loopback ports, as users run it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import requests

from tests import postgres


@dataclass
class LiveServer:
    process: subprocess.Popen
    api_port: int
    registry_port: int
    data_dir: Path
    log_path: Path
    database_url: str | None = None
    scheme: str = "http"
    trust: str | None = None  # the CA (or certificate) to trust when it serves HTTPS; default its local CA
    log_mark: int = 0  # where the current test's part of the log begins (set by conftest's reset)

    @property
    def ca_bundle(self) -> str | bool:
        """``verify=`` for requests/boto3: what to trust when the server speaks HTTPS."""
        if self.scheme != "https":
            return True
        return self.trust or str(self.data_dir / "tls" / "ca.crt")

    @property
    def storage_args(self) -> list[str]:
        """CLI arguments naming this server's storage, for `ecr-emulator <command>` beside it."""
        args = ["--data-dir", str(self.data_dir)]
        return args + (["--database-url", self.database_url] if self.database_url else [])

    @property
    def api_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.api_port}"

    @property
    def registry(self) -> str:
        """host:port of the registry, as clients name it."""
        return f"localhost:{self.registry_port}"

    @property
    def registry_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.registry_port}"

    def control(self, path: str, body: dict | None = None) -> dict:
        url = f"{self.api_url}/_emulator/{path}"
        if body is not None:
            resp = requests.post(url, json=body or {}, timeout=120, verify=self.ca_bundle)
        else:
            resp = requests.get(url, timeout=60, verify=self.ca_bundle)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        self.control("reset", {})

    def run_jobs(self) -> dict:
        return self.control("jobs/run", {})

    def advance_clock(self, seconds: float) -> dict:
        return self.control("clock", {"advance": seconds})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def mark_log(self) -> None:
        """The current test's part of the log (``test_log``) begins here."""
        self.log_mark = self.log_path.stat().st_size

    def test_log(self) -> str:
        """What the server logged since ``mark_log``: a shared server's log holds every earlier test's."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self.log_mark)
            return fh.read().decode(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode


def start_server(data_dir: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 60,
                 trust: str | None = None) -> LiveServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    out = open(log_path, "ab")
    start = out.tell()  # a server started again on the same data appends: read only this start's lines
    proc_env = dict(os.environ, **(env or {}))
    proc_env.setdefault("ECR_EMULATOR_LOG_LEVEL", "info")
    database_url = proc_env.get("ECR_EMULATOR_DATABASE_URL") or postgres.database_url(str(data_dir.resolve()))
    if database_url:
        proc_env["ECR_EMULATOR_DATABASE_URL"] = database_url
    process = subprocess.Popen(
        [sys.executable, "-m", "ecr_emulator", "serve", "--api-port", "0", "--registry-port", "0",
         "--data-dir", str(data_dir), *extra],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=proc_env,
        start_new_session=True,
    )
    deadline = time.time() + timeout
    ports: dict[str, int] = {}
    while time.time() < deadline:
        with open(log_path, "rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
        for kind in ("API", "registry"):
            m = re.findall(rf"ecr-emulator {kind} listening on (https?)://[^:]+:(\d+)", text)
            if m:
                scheme, ports[kind] = m[-1][0], int(m[-1][1])
        if len(ports) == 2:
            server = LiveServer(process, ports["API"], ports["registry"], data_dir, log_path, database_url, scheme,
                                trust)
            try:
                if requests.get(f"{server.api_url}/_emulator/health", timeout=2, verify=server.ca_bundle).ok:
                    return server
            except requests.RequestException:
                pass
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log_path.read_text(errors='replace')}")


def make_client(server: LiveServer, access_key: str = "testing", region: str = "us-east-1", service: str = "ecr"):
    return boto3.client(
        service,
        endpoint_url=server.api_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key="testing",
        verify=server.ca_bundle,
    )


def eventually(probe, timeout: float = 5.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """``probe()``'s first truthy value within ``timeout`` seconds (AssertionError otherwise), for
    facts the server writes behind the request, such as pull times."""
    deadline = time.time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"not true after {timeout}s: {probe}")
        time.sleep(interval)
