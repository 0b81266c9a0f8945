"""ECR API benchmark: ecr-emulator beside moto_server (the API peer), same boto3 client.

    python scripts/bench/api.py [--calls 300] [--clients 16] [--backend sqlite|postgres]

Both servers run on loopback. Every single-item operation is timed with one sequential boto3
client (median of three loops of ``--calls`` calls; the two servers take turns loop by loop, so
drift in the host's load weighs on both alike), PutImage and BatchGetImage also from
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


LOOPS = 3


def sequential(runs: list[tuple[Server, Callable[[int], None]]], calls: int) -> list[Figure]:
    """Each server's median rate over LOOPS loops of ``calls`` (CPU over all of them). The servers
    take turns loop by loop, in alternating order, so a host that gets busier or quieter during
    the run weighs on both alike (a run of every operation on one server, then on the other, gave
    ratios that moved with the host's load by a factor of two)."""
    rates: list[list[float]] = [[] for _ in runs]
    cpu, db = [0.0] * len(runs), [0.0] * len(runs)
    for n in range(LOOPS):
        order = list(enumerate(runs))
        for k, (server, fn) in order if n % 2 == 0 else reversed(order):
            def loop(base: int = n * calls, fn: Callable[[int], None] = fn) -> int:
                for i in range(calls):
                    fn(base + i)
                return calls

            seconds, c, d, _ = timed(server, loop)
            rates[k].append(calls / seconds)
            cpu[k], db[k] = cpu[k] + c, db[k] + d
    return [Figure(statistics.median(rates[k]), 1000 * cpu[k] / (LOOPS * calls), 1000 * db[k] / (LOOPS * calls))
            for k in range(len(runs))]


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


class Workload:
    """The benchmark's calls against one server, and the state they build on (the same on both)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.ecr = client(server.url)
        self.base = build_image()
        self.doc = json.loads(self.base.manifest)

    def setup_images(self) -> None:
        self.ecr.create_repository(repositoryName="images")
        push_via_api(self.ecr, "images", self.base, "base")

    def upload(self, i: int) -> None:
        ecr, data = self.ecr, f"layer {i} ".encode() * 100
        upload_id = ecr.initiate_layer_upload(repositoryName="images")["uploadId"]
        ecr.upload_layer_part(repositoryName="images", uploadId=upload_id, partFirstByte=0,
                              partLastByte=len(data) - 1, layerPartBlob=data)
        ecr.complete_layer_upload(repositoryName="images", uploadId=upload_id,
                                  layerDigests=["sha256:" + hashlib.sha256(data).hexdigest()])

    def put(self, i: int) -> None:
        self.doc["annotations"] = {"n": str(i)}
        self.ecr.put_image(repositoryName="images", imageManifest=json.dumps(self.doc), imageTag=f"t{i}")


def scenario(servers: list[Server], calls: int, clients: int) -> list[Measured]:
    """The same workload on every server, operation by operation, the servers taking turns."""
    work = [Workload(s) for s in servers]
    measured = [Measured() for _ in servers]
    few = max(calls // 3, 10)

    def row(name: str, op: Callable[[Workload], Callable[[int], None]], n: int = calls) -> None:
        for m, figure in zip(measured, sequential([(w.server, op(w)) for w in work], n), strict=True):
            m.figures[name] = figure

    row("CreateRepository", lambda w: lambda i: w.ecr.create_repository(repositoryName=f"r/{i}"))
    row("DescribeRepositories (one name)",
        lambda w: lambda i: w.ecr.describe_repositories(repositoryNames=[f"r/{i % calls}"]))
    row("GetAuthorizationToken", lambda w: lambda i: w.ecr.get_authorization_token())
    for w in work:
        w.setup_images()
    row("BatchCheckLayerAvailability", lambda w: lambda i: w.ecr.batch_check_layer_availability(
        repositoryName="images", layerDigests=[w.base.layers[0].digest]))
    row("Initiate+UploadLayerPart+Complete (x3 calls)", lambda w: w.upload, few)
    row("PutImage (new manifest + tag)", lambda w: w.put)
    row("BatchGetImage (by tag)", lambda w: lambda i: w.ecr.batch_get_image(
        repositoryName="images", imageIds=[{"imageTag": f"t{i % calls}"}]))
    row("DeleteRepository", lambda w: lambda i: w.ecr.delete_repository(repositoryName=f"r/{i}"))
    row("DescribeRepositories (page of 100)", lambda w: lambda i: w.ecr.describe_repositories(maxResults=100), few)
    row("DescribeImages (page of 100)",
        lambda w: lambda i: w.ecr.describe_images(repositoryName="images", maxResults=100), few)
    row("ListImages (page of 100)",
        lambda w: lambda i: w.ecr.list_images(repositoryName="images", maxResults=100), few)

    if clients:
        per_client = max(calls // clients, 5) * 2
        for op in ("PutImage", "BatchGetImage"):
            for m, w in zip(measured, work, strict=True):
                m.figures[f"{op}, {clients} clients"] = concurrent(
                    w.server, op, "images", w.base.manifest.decode(), clients, per_client, 0)
    return measured


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
                mine, theirs = scenario([ours, peer], args.calls, args.clients)
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
