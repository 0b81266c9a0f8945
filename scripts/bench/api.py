"""ECR API benchmark: ecr-emulator beside moto_server (the API peer), same boto3 client.

    python scripts/bench/api.py [--calls 300]

Both servers run on loopback; each row is the median of three timed loops of sequential
boto3 calls (one client thread) and is printed as calls/second with the ratio ours/moto.
moto validates and stores less than ECR (no layer checks, no pagination limits, no
transactions), so it is a fast baseline rather than a like-for-like one. The machine is
shared and noisy: read the ratios, not the third digit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.images import build_image, push_via_api  # noqa: E402
from tests.server import start_server  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    exe = shutil.which("moto_server")
    if exe is None:
        raise SystemExit("moto_server not found: pip install 'moto[server]'")
    port = free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            requests.get(url + "/moto-api/", timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def client(url: str):
    return boto3.client("ecr", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def rate(fn: Callable[[int], None], calls: int) -> float:
    """Median calls/second over three loops."""
    rates = []
    for loop in range(3):
        started = time.perf_counter()
        for i in range(calls):
            fn(loop * calls + i)
        rates.append(calls / (time.perf_counter() - started))
    return statistics.median(rates)


def scenario(ecr, calls: int, tag: str, layer_api: bool) -> dict[str, float]:
    """The same workload on either server; ``tag`` keeps names apart between runs."""
    out: dict[str, float] = {}
    out["CreateRepository"] = rate(lambda i: ecr.create_repository(repositoryName=f"{tag}/r{i}"), calls)
    out["DescribeRepositories (page of 100)"] = rate(lambda i: ecr.describe_repositories(maxResults=100), calls)
    out["GetAuthorizationToken"] = rate(lambda i: ecr.get_authorization_token(), calls)
    ecr.create_repository(repositoryName=f"{tag}/images")
    base = build_image()
    if layer_api:  # the blobs once; moto has no layer API and does not check manifests' blobs
        push_via_api(ecr, f"{tag}/images", base, "base")
    doc = json.loads(base.manifest)

    def put(i: int) -> None:
        doc["annotations"] = {"n": str(i)}
        ecr.put_image(repositoryName=f"{tag}/images", imageManifest=json.dumps(doc), imageTag=f"t{i}")

    out["PutImage (new manifest + tag)"] = rate(put, calls)
    out["DescribeImages (page of 100)"] = rate(
        lambda i: ecr.describe_images(repositoryName=f"{tag}/images", maxResults=100), max(calls // 3, 10))
    out["BatchGetImage (by tag)"] = rate(
        lambda i: ecr.batch_get_image(repositoryName=f"{tag}/images", imageIds=[{"imageTag": f"t{i % calls}"}]),
        calls)
    out["ListImages (page of 100)"] = rate(
        lambda i: ecr.list_images(repositoryName=f"{tag}/images", maxResults=100), max(calls // 3, 10))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per timed loop (default 300)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ecr-bench-api-") as tmp:
        ours = start_server(Path(tmp) / "data", "--job-workers", "0", env={"ECR_EMULATOR_LOG_LEVEL": "warning"})
        moto, moto_url = start_moto()
        try:
            mine = scenario(client(ours.api_url), args.calls, "ours", layer_api=True)
            peer = scenario(client(moto_url), args.calls, "moto", layer_api=False)
        finally:
            ours.stop()
            os.killpg(moto.pid, signal.SIGTERM)
            moto.wait(10)
    width = max(len(k) for k in mine)
    print(f"{'operation':<{width}}  {'ours/s':>8}  {'moto/s':>8}  ratio")
    for key in mine:
        print(f"{key:<{width}}  {mine[key]:8.0f}  {peer[key]:8.0f}  {mine[key] / peer[key]:5.2f}x")
    print(f"(sequential boto3 calls, median of 3 loops of {args.calls}; shared 2-core machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
