"""ECR API benchmark: ecr-emulator beside moto_server (the API peer), same boto3 client.

    python scripts/bench/api.py [--calls 300] [--clients 16] [--backend sqlite|postgres]

Both servers run on loopback. Every single-item operation is timed with one sequential boto3
client (median of three loops of ``--calls`` calls), PutImage and BatchGetImage also from
``--clients`` concurrent clients (separate processes, so the clients are not bound by one
interpreter lock). Each row prints calls/second, the ratio ours/moto, and the server CPU per
call: user+system time of the server's processes (our gunicorn workers, moto_server; with
``--backend postgres`` also PostgreSQL's processes, shown apart) from /proc before and after,
divided by the calls. CPU per call is steadier than wall time on a shared machine.

moto validates and stores less than ECR (no layer checks, no pagination limits, no
transactions, nothing persisted), so it is a fast baseline rather than a like-for-like one.
The machine is shared and noisy: read the ratios, not the third digit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
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
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests import postgres  # noqa: E402
from tests.images import build_image, push_via_api  # noqa: E402
from tests.server import start_server  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    # the moto beside this interpreter (the project's test extra), not another one on PATH
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
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


def client(url: str):  # type: ignore[no-untyped-def]
    return boto3.client("ecr", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


# ---------------------------------------------------------------- server CPU


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (processes that ended meanwhile count as 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


@dataclass
class Server:
    name: str
    url: str
    processes: Callable[[], list[int]]  # whose CPU is the server's
    database: Callable[[], list[int]] = lambda: []  # a database server's processes, counted apart

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.processes()), cpu_seconds(self.database())


@dataclass
class Figure:
    rate: float  # operations per second
    cpu_ms: float  # server CPU per operation
    db_ms: float = 0.0  # database server CPU per operation


@dataclass
class Measured:
    figures: dict[str, Figure] = field(default_factory=dict)


def timed(server: Server, run: Callable[[], int]) -> tuple[float, float, float, int]:
    """(seconds, server CPU seconds, database CPU seconds, operations) of one ``run()``."""
    cpu0, db0 = server.cpu()
    started = time.perf_counter()
    done = run()
    seconds = time.perf_counter() - started
    cpu1, db1 = server.cpu()
    return seconds, cpu1 - cpu0, db1 - db0, done


def sequential(server: Server, fn: Callable[[int], None], calls: int) -> Figure:
    """Median rate over three loops of ``calls``; CPU over all of them."""
    rates, cpu, db = [], 0.0, 0.0

    def loop(base: int) -> int:
        for i in range(calls):
            fn(base + i)
        return calls

    for n in range(3):
        seconds, c, d, _ = timed(server, lambda n=n: loop(n * calls))
        rates.append(calls / seconds)
        cpu, db = cpu + c, db + d
    return Figure(statistics.median(rates), 1000 * cpu / (3 * calls), 1000 * db / (3 * calls))


# ---------------------------------------------------------------- concurrent clients


def _client_process(url: str, op: str, repo: str, doc: str, first: int, count: int, ready, go, out) -> None:  # type: ignore[no-untyped-def]
    ecr = client(url)
    ecr.get_authorization_token()  # connect and load botocore's model before the clock starts
    manifest = json.loads(doc)
    ready.put(os.getpid())
    go.wait()
    started = time.perf_counter()
    for i in range(first, first + count):
        if op == "PutImage":
            manifest["annotations"] = {"c": str(i)}
            ecr.put_image(repositoryName=repo, imageManifest=json.dumps(manifest), imageTag=f"c{i}")
        else:
            ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": f"c{i}"}])
    out.put((started, time.perf_counter()))


def concurrent(server: Server, op: str, repo: str, doc: str, clients: int, per_client: int, base: int) -> Figure:
    """``clients`` processes calling ``op`` ``per_client`` times each, released together."""
    ctx = multiprocessing.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_client_process,
                         args=(server.url, op, repo, doc, base + c * per_client, per_client, ready, go, out))
             for c in range(clients)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    cpu0, db0 = server.cpu()
    go.set()
    spans = [out.get(timeout=600) for _ in procs]
    cpu1, db1 = server.cpu()
    for p in procs:
        p.join(30)
    calls = clients * per_client
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    return Figure(calls / seconds, 1000 * (cpu1 - cpu0) / calls, 1000 * (db1 - db0) / calls)


# ---------------------------------------------------------------- the workload


def scenario(server: Server, calls: int, clients: int) -> Measured:
    """The same workload on either server."""
    ecr = client(server.url)
    m = Measured()
    f = m.figures
    f["CreateRepository"] = sequential(server, lambda i: ecr.create_repository(repositoryName=f"r/{i}"), calls)
    f["DescribeRepositories (one name)"] = sequential(
        server, lambda i: ecr.describe_repositories(repositoryNames=[f"r/{i % calls}"]), calls)
    f["GetAuthorizationToken"] = sequential(server, lambda i: ecr.get_authorization_token(), calls)

    ecr.create_repository(repositoryName="images")
    base = build_image()
    push_via_api(ecr, "images", base, "base")
    layer = base.layers[0]
    f["BatchCheckLayerAvailability"] = sequential(
        server, lambda i: ecr.batch_check_layer_availability(repositoryName="images", layerDigests=[layer.digest]),
        calls)

    def upload(i: int) -> None:
        data = f"layer {i} ".encode() * 100
        upload_id = ecr.initiate_layer_upload(repositoryName="images")["uploadId"]
        ecr.upload_layer_part(repositoryName="images", uploadId=upload_id, partFirstByte=0,
                              partLastByte=len(data) - 1, layerPartBlob=data)
        ecr.complete_layer_upload(repositoryName="images", uploadId=upload_id,
                                  layerDigests=["sha256:" + hashlib.sha256(data).hexdigest()])

    f["Initiate+UploadLayerPart+Complete (x3 calls)"] = sequential(server, upload, max(calls // 3, 10))

    doc = json.loads(base.manifest)

    def put(i: int) -> None:
        doc["annotations"] = {"n": str(i)}
        ecr.put_image(repositoryName="images", imageManifest=json.dumps(doc), imageTag=f"t{i}")

    f["PutImage (new manifest + tag)"] = sequential(server, put, calls)
    f["BatchGetImage (by tag)"] = sequential(
        server, lambda i: ecr.batch_get_image(repositoryName="images", imageIds=[{"imageTag": f"t{i % calls}"}]),
        calls)
    f["DeleteRepository"] = sequential(server, lambda i: ecr.delete_repository(repositoryName=f"r/{i}"), calls)

    f["DescribeRepositories (page of 100)"] = sequential(
        server, lambda i: ecr.describe_repositories(maxResults=100), max(calls // 3, 10))
    f["DescribeImages (page of 100)"] = sequential(
        server, lambda i: ecr.describe_images(repositoryName="images", maxResults=100), max(calls // 3, 10))
    f["ListImages (page of 100)"] = sequential(
        server, lambda i: ecr.list_images(repositoryName="images", maxResults=100), max(calls // 3, 10))

    if clients:
        per_client = max(calls // clients, 5) * 2
        raw = base.manifest.decode()
        f[f"PutImage, {clients} clients"] = concurrent(server, "PutImage", "images", raw, clients, per_client, 0)
        f[f"BatchGetImage, {clients} clients"] = concurrent(server, "BatchGetImage", "images", raw, clients,
                                                            per_client, 0)
    return m


# ---------------------------------------------------------------- main


def postmaster_processes(cluster: postgres.Cluster) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        main = int((cluster.data / "postmaster.pid").read_text().split()[0])
        return [main, *children(main)]
    return pids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per timed loop (default 300)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients for the concurrent rows "
                        "(default 16; 0 skips them)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite",
                        help="our database (postgres: a throwaway cluster with its default durability settings)")
    parser.add_argument("--workers", type=int, default=None, help="our --workers (default: the server's default)")
    args = parser.parse_args()
    extra = ["--job-workers", "0"] + (["--workers", str(args.workers)] if args.workers else [])
    env = {"ECR_EMULATOR_LOG_LEVEL": "warning"}
    cluster = None
    with tempfile.TemporaryDirectory(prefix="ecr-bench-api-") as tmp:
        try:
            database: Callable[[], list[int]] = lambda: []  # noqa: E731
            if args.backend == "postgres":
                cluster = postgres.Cluster(fsync=True)
                env["ECR_EMULATOR_DATABASE_URL"] = cluster.new_database()
                database = postmaster_processes(cluster)
            live = start_server(Path(tmp) / "data", *extra, env=env)
            moto, moto_url = start_moto()
            try:
                ours = Server("ecr-emulator", live.api_url, lambda: children(live.process.pid), database)
                peer = Server("moto", moto_url, lambda: [moto.pid, *children(moto.pid)])
                mine = scenario(ours, args.calls, args.clients)
                theirs = scenario(peer, args.calls, args.clients)
            finally:
                live.stop()
                os.killpg(moto.pid, signal.SIGTERM)
                moto.wait(10)
        finally:
            if cluster is not None:
                cluster.stop()
    report(mine, theirs, args)
    return 0


def report(mine: Measured, theirs: Measured, args: argparse.Namespace) -> None:
    width = max(len(k) for k in mine.figures)
    pg = args.backend == "postgres"
    print(f"ecr-emulator ({args.backend}) beside moto_server; ops/s, ratio, server CPU ms per op"
          + (" (ours: workers + PostgreSQL)" if pg else ""))
    print(f"{'operation':<{width}}  {'ours/s':>7}  {'moto/s':>7}  {'ratio':>6}  {'cpu ours':>8}  {'cpu moto':>8}"
          + (f"  {'of it pg':>8}" if pg else ""))
    for key, ours in mine.figures.items():
        peer = theirs.figures[key]
        line = (f"{key:<{width}}  {ours.rate:7.0f}  {peer.rate:7.0f}  {ours.rate / peer.rate:5.2f}x  "
                f"{ours.cpu_ms + ours.db_ms:8.2f}  {peer.cpu_ms:8.2f}")
        print(line + (f"  {ours.db_ms:8.2f}" if pg else ""))
    print(f"(sequential rows: one boto3 client, median of 3 loops of {args.calls}; concurrent rows: "
          f"{args.clients} client processes released together; shared {os.cpu_count()}-core machine, "
          "clients on the same CPUs)")


if __name__ == "__main__":
    raise SystemExit(main())
