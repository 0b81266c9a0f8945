"""A real S3-compatible server for the tests: moto's server mode (``moto_server``), started on a
free loopback port, stopped by PID. Each user of it gets a bucket of its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

ACCESS_KEY = "moto-access"
SECRET_KEY = "moto-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    process: subprocess.Popen
    endpoint_url: str
    log_path: Path

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"}))

    def new_bucket(self, name: str | None = None) -> str:
        bucket = name or "ecr-" + uuid.uuid4().hex[:16]
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def env(self) -> dict[str, str]:
        """The variables an ecr-emulator uses to reach this store (the standard AWS ones)."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION,
                "ECR_EMULATOR_S3_ENDPOINT_URL": self.endpoint_url, "ECR_EMULATOR_S3_PATH_STYLE": "true"}

    def serve_args(self, bucket: str, prefix: str = "registry") -> list[str]:
        return ["--blob-store", f"s3://{bucket}/{prefix}"]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def start() -> S3Server:
    log_path = Path(tempfile.mkdtemp(prefix="moto-")) / "moto.log"
    moto = Path(sys.executable).with_name("moto_server")
    with open(log_path, "wb") as out:
        process = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", "0"], stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", log_path.read_text(errors="replace"))
        if m:
            return S3Server(process, m[1], log_path)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"moto_server did not start:\n{log_path.read_text(errors='replace')}")
