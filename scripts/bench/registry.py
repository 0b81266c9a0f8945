#!/usr/bin/env python3
"""Registry data-plane benchmark: ecr-emulator beside CNCF Distribution, same clients.

    python scripts/bench/registry.py            # ~2 minutes, up to ~5 GiB of temporary disk
    python scripts/bench/registry.py --help     # sizes, repeats, durations, --tmp

Run it from the repository root with the project's Python (boto3 installed). It needs ``curl``
and Distribution from the Debian package ``docker-registry`` (``apt-get install
docker-registry``); ``wrk`` (``apt-get install wrk``) drives the manifest load when present,
else a threaded Python client does. Both servers run on loopback only, on free ports, with
throw-away data directories (Distribution with its own config file, never the system one);
both are stopped by PID at the end, also on errors.

Measured, each on both servers with the same client, rounds interleaved: push of a 256 MiB
random blob (POST + streamed PUT ?digest=), pull of it, pull of a small image (manifest,
config, three 4-6 KiB layers on one connection), manifest GETs per second from 16 connections,
and the growth of our gunicorn worker's RSS while a 1 GiB layer is pushed. Figures are medians
(every run is printed too). The machine this runs on is shared and noisy, with clients and
servers on the same two CPUs, so absolute figures mean little; the ratio to a well-known Go
registry measured in the same minute is what tells whether our data plane is in its league.

Bars, printed as PASS/FAIL: pulls at least as fast as Distribution (ratio >= 1.0), pushes at
least 0.8x, RSS growth under 100 MiB. The exit status is 0 either way: a report, not a test.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

MIB = 1024 * 1024
REPO = "bench/registry"
TAG = "small"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DISTRIBUTION = "/usr/bin/docker-registry"
REGION = "us-east-1"


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
def ecr_emulator(workdir: Path) -> Iterator[tuple[Target, subprocess.Popen[bytes]]]:
    """Start ``python -m ecr_emulator serve`` on port 0, create the repository, log in."""
    import boto3

    log = workdir / "ecr-emulator.log"
    env = dict(os.environ, ECR_EMULATOR_LOG_LEVEL=os.environ.get("ECR_EMULATOR_LOG_LEVEL", "warning"))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecr_emulator", "serve", "--host", "127.0.0.1", "--api-port", "0",
             "--registry-port", "0", "--data-dir", str(workdir / "ecr-data")],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        ports: dict[str, int] = {}
        deadline = time.monotonic() + 60
        while len(ports) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ecr-emulator did not start:\n{log.read_text(errors='replace')}")
            text = log.read_text(errors="replace")
            for kind in ("API", "registry"):
                m = re.findall(rf"ecr-emulator {kind} listening on http://[^:]+:(\d+)", text)
                if m:
                    ports[kind] = int(m[-1])
            time.sleep(0.05)
        api = f"http://127.0.0.1:{ports['API']}"
        wait_http(f"{api}/_emulator/health", proc, log)
        ecr = boto3.client("ecr", endpoint_url=api, region_name=REGION,
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        ecr.create_repository(repositoryName=REPO)
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        yield Target("ecr-emulator", "127.0.0.1", ports["registry"], {"Authorization": f"Basic {token}"}), proc
    finally:
        stop(proc)


@contextmanager
def distribution(workdir: Path) -> Iterator[Target]:
    """Start Distribution with its own config: filesystem storage in ``workdir``, no auth,
    loopback only. The system config in /etc/docker/registry is never read or changed."""
    port = free_port()
    root = workdir / "distribution-data"
    root.mkdir()
    config = workdir / "distribution.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"  filesystem:\n    rootdirectory: {root}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = workdir / "distribution.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([DISTRIBUTION, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", proc, log)
        yield Target("Distribution", "127.0.0.1", port)
    finally:
        stop(proc)


# ---------------------------------------------------------------- HTTP helpers


def call(target: Target, method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(urljoin(target.base, url))
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path, body=body, headers={**target.headers, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def put_url(target: Target, location: str, digest: str) -> str:
    url = urljoin(target.base, location)
    return f"{url}{'&' if '?' in url else '?'}digest={quote(digest, safe='')}"


def push_small(target: Target, data: bytes) -> str:
    """Monolithic POST ?digest= for a small blob (setup only, not measured)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, headers, _ = call(target, "POST", f"/v2/{REPO}/blobs/uploads/")
    if status != 202:
        raise RuntimeError(f"{target.name}: POST upload answered {status}")
    status, _, body = call(target, "PUT", put_url(target, headers["location"], digest), data,
                           {"Content-Type": "application/octet-stream"})
    if status != 201:
        raise RuntimeError(f"{target.name}: PUT blob answered {status}: {body[:300]!r}")
    return digest


def curl(args: list[str]) -> list[str]:
    proc = subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"curl failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.split()


def push_blob(target: Target, path: Path, digest: str) -> float:
    """POST an upload, then PUT ?digest= with the file streamed by curl. Returns seconds."""
    started = time.perf_counter()
    status, headers, _ = call(target, "POST", f"/v2/{REPO}/blobs/uploads/")
    if status != 202:
        raise RuntimeError(f"{target.name}: POST upload answered {status}")
    post = time.perf_counter() - started
    code, total = curl([
        "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-T", str(path),
        "-H", "Content-Type: application/octet-stream", "-H", "Expect:", *target.curl_headers(),
        put_url(target, headers["location"], digest),
    ])
    if code != "201":
        raise RuntimeError(f"{target.name}: PUT blob answered {code}")
    return post + float(total)


def pull_blob(target: Target, digest: str, size: int) -> float:
    """GET the blob on a fresh connection, read into one reused 8 MiB buffer. Returns seconds.

    http.client's ``readinto`` on a large buffer costs one ``recv_into`` per socket read and no
    allocation; measured here it outran ``curl -o /dev/null`` by about 20%, so the figure says
    more about the server than about the client.
    """
    view = memoryview(bytearray(8 * MIB))
    started = time.perf_counter()
    conn = http.client.HTTPConnection(target.host, target.port, timeout=300)
    try:
        conn.request("GET", f"/v2/{REPO}/blobs/{digest}", headers=target.headers)
        resp = conn.getresponse()
        got = 0
        while n := resp.readinto(view):
            got += n
    finally:
        conn.close()
    elapsed = time.perf_counter() - started
    if resp.status != 200 or got != size:
        raise RuntimeError(f"{target.name}: GET blob answered {resp.status} with {got} of {size} bytes")
    return elapsed


def random_file(path: Path, size: int, seed: bytes = b"") -> str:
    """Write ``size`` random bytes (prefixed by ``seed``) and return their sha256 digest."""
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        if seed:
            fh.write(seed)
            h.update(seed)
        left = size - len(seed)
        while left > 0:
            chunk = os.urandom(min(16 * MIB, left))
            fh.write(chunk)
            h.update(chunk)
            left -= len(chunk)
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------- the small image


def push_image(target: Target) -> None:
    layers = [os.urandom(4096 + 1024 * i) for i in range(3)]
    layer_digests = [push_small(target, data) for data in layers]
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
        "config": {"Cmd": ["/bin/sh"]},
    }).encode()
    config_digest = push_small(target, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": len(b)} for d, b in zip(layer_digests, layers, strict=True)],
    }).encode()
    status, _, body = call(target, "PUT", f"/v2/{REPO}/manifests/{TAG}", manifest, {"Content-Type": OCI_MANIFEST})
    if status != 201:
        raise RuntimeError(f"{target.name}: PUT manifest answered {status}: {body[:300]!r}")


def pull_image(target: Target) -> float:
    """Manifest by tag, then config and layers, over one keep-alive connection (like a client)."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection(target.host, target.port, timeout=60)
    try:
        conn.request("GET", f"/v2/{REPO}/manifests/{TAG}", headers={**target.headers, "Accept": OCI_MANIFEST})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{target.name}: GET manifest answered {resp.status}")
        manifest = json.loads(body)
        for desc in [manifest["config"], *manifest["layers"]]:
            conn.request("GET", f"/v2/{REPO}/blobs/{desc['digest']}", headers=target.headers)
            resp = conn.getresponse()
            if resp.status != 200 or len(resp.read()) != desc["size"]:
                raise RuntimeError(f"{target.name}: GET blob answered {resp.status}")
    finally:
        conn.close()
    return time.perf_counter() - started


# ---------------------------------------------------------------- manifest requests/second


def wrk_rps(target: Target, seconds: float, connections: int) -> float:
    headers = ["-H", f"Accept: {OCI_MANIFEST}"]
    for key, value in target.headers.items():
        headers += ["-H", f"{key}: {value}"]
    proc = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{int(seconds)}s", *headers,
         f"{target.base}/v2/{REPO}/manifests/{TAG}"],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", proc.stdout)
    if bad:
        raise RuntimeError(f"{target.name}: {bad[1]} manifest GETs failed under load")
    m = re.search(r"Requests/sec:\s+([\d.]+)", proc.stdout)
    if not m:
        raise RuntimeError(f"cannot read wrk output:\n{proc.stdout}")
    return float(m[1])


def python_rps(target: Target, seconds: float, connections: int) -> float:
    """Fallback when wrk is missing: one keep-alive connection per thread."""
    deadline = time.monotonic() + seconds
    counts = [0] * connections
    errors: list[str] = []

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=30)
        headers = {**target.headers, "Accept": OCI_MANIFEST}
        while time.monotonic() < deadline:
            conn.request("GET", f"/v2/{REPO}/manifests/{TAG}", headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors.append(str(resp.status))
                return
            counts[i] += 1
        conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{target.name}: manifest GETs failed under load: {errors[:3]}")
    return sum(counts) / (time.monotonic() - started)


# ---------------------------------------------------------------- RSS of the gunicorn worker


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Memory:
    push_seconds: float
    before_mib: float  # VmRSS of the worker before the push
    peak_mib: float  # highest of VmHWM (reset first, where allowed) and the sampled VmRSS
    after_mib: float  # VmRSS once the push has returned
    how: str

    @property
    def growth_mib(self) -> float:
        return self.peak_mib - self.before_mib


def rss_growth(target: Target, arbiter: int, path: Path, digest: str) -> Memory:
    """Push the big layer while sampling the gunicorn worker(s) of ``arbiter``.

    Where there is more than one worker, the one that grew most is reported.
    """
    workers = children(arbiter)
    if not workers:
        raise RuntimeError("no gunicorn worker found under the arbiter")
    before = {pid: status_kib(pid, "VmRSS") for pid in workers}
    reset = True
    for pid in workers:  # "5" resets VmHWM (Linux >= 4.0), so earlier phases do not count
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            reset = False
    peak = dict(before)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in workers:
                try:
                    peak[pid] = max(peak[pid], status_kib(pid, "VmRSS"))
                except (OSError, KeyError):
                    pass
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        seconds = push_blob(target, path, digest)
    finally:
        done.set()
        sampler.join()
    if reset:
        for pid in workers:
            peak[pid] = max(peak[pid], status_kib(pid, "VmHWM"))
    worst = max(workers, key=lambda pid: peak[pid] - before[pid])
    how = ("VmHWM reset before the push, plus VmRSS sampled every 20 ms" if reset
           else "VmRSS sampled every 20 ms (could not reset VmHWM)")
    return Memory(seconds, before[worst] / 1024, peak[worst] / 1024, status_kib(worst, "VmRSS") / 1024,
                  f"{how}; worker pid {worst} of {len(workers)}")


# ---------------------------------------------------------------- report


@dataclass
class Row:
    label: str
    unit: str
    ours: float
    theirs: float
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs if self.theirs else float("inf")

    @property
    def speed_ratio(self) -> float:
        """How many times as fast ours is (>1 is better), whatever the unit."""
        return self.ratio if self.higher_is_better else (1 / self.ratio if self.ratio else float("inf"))


def interleaved(targets: list[Target], runs: int, measure: Callable[[Target, int], float]) -> dict[str, list[float]]:
    """``runs`` rounds of ``measure(target, round)``, both servers in every round (in turn
    first), so that a burst of noise on the shared machine hits both rather than one."""
    results: dict[str, list[float]] = {t.name: [] for t in targets}
    for i in range(runs):
        for t in targets if i % 2 == 0 else targets[::-1]:
            results[t.name].append(measure(t, i))
    return results


def synced_push(target: Target, path: Path, digest: str) -> float:
    """Push after flushing dirty pages (untimed), so that neither server's push waits on the
    write-back of bytes the other server (or the blob generator) wrote just before."""
    os.sync()
    return push_blob(target, path, digest)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blob-mib", type=int, default=256, help="size of the push/pull blob (256)")
    parser.add_argument("--big-mib", type=int, default=1024, help="size of the layer for the RSS check (1024)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each blob push/pull figure (5)")
    parser.add_argument("--image-pulls", type=int, default=30, help="runs of the small-image pull (30)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each manifest GET load run (10)")
    parser.add_argument("--load-runs", type=int, default=3, help="manifest GET load runs per server (3)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections for it (16)")
    parser.add_argument("--python-client", action="store_true", help="use the Python load client, not wrk")
    parser.add_argument("--tmp", default=None, help="parent directory for temporary data (system default)")
    args = parser.parse_args()

    if not os.access(DISTRIBUTION, os.X_OK):
        print(f"CNCF Distribution ({DISTRIBUTION}) is missing; install it with: apt-get install docker-registry")
        return 0
    if shutil.which("curl") is None:
        print("curl is missing; install it with: apt-get install curl")
        return 0
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    rps = wrk_rps if use_wrk else python_rps
    load_client = (f"wrk -t{min(2, args.connections)} -c{args.connections} -d{int(args.duration)}s" if use_wrk
                   else f"threaded Python http.client, {args.connections} keep-alive connections"
                   + ("" if args.python_client else " (wrk not found: apt-get install wrk)"))
    version = subprocess.run([DISTRIBUTION, "--version"], capture_output=True, text=True).stdout.split()

    print(f"registry benchmark: ecr-emulator (this checkout) vs CNCF Distribution "
          f"{version[-1] if version else '?'} ({DISTRIBUTION})")
    print(f"NOTE: this machine has {os.cpu_count()} CPUs, is shared and noisy, and the clients run on the same "
          "CPUs as both servers:")
    print("      single figures move by +-30% between runs; the ratio of interleaved medians is what counts.")
    print("clients: blob push curl -T (POST, then PUT ?digest= with the file streamed; sync before each push);")
    print("         blob pull Python http.client readinto an 8 MiB buffer; small image Python http.client, one")
    print(f"         keep-alive connection per pull; manifest load {load_client}")

    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecr-bench-", dir=args.tmp)))
        (work / "ours").mkdir()
        (work / "dist").mkdir()
        ours, arbiter = stack.enter_context(ecr_emulator(work / "ours"))
        theirs = stack.enter_context(distribution(work / "dist"))
        targets = [ours, theirs]
        print(f"servers: ecr-emulator registry {ours.base} (gunicorn arbiter pid {arbiter.pid}), "
              f"Distribution {theirs.base}")

        size = args.blob_mib * MIB
        blobs = []
        for i in range(args.repeats):  # a distinct blob per run: no server can skip bytes it already has
            path = work / f"blob-{i}"
            blobs.append((path, random_file(path, size, seed=f"bench-{i}-".encode())))
        for t in targets:
            push_image(t)
            pull_image(t)  # warm up: first connections, caches, lazily imported code paths

        print("measuring ...", flush=True)
        push = interleaved(targets, args.repeats, lambda t, i: args.blob_mib / synced_push(t, *blobs[i]))
        pull = interleaved(targets, args.repeats, lambda t, i: args.blob_mib / pull_blob(t, blobs[i][1], size))
        images = interleaved(targets, args.image_pulls, lambda t, i: pull_image(t) * 1000)
        manifests = interleaved(targets, args.load_runs, lambda t, i: rps(t, args.duration, args.connections))
        for path, _ in blobs:
            path.unlink()
        big = work / "big"
        big_digest = random_file(big, args.big_mib * MIB, seed=b"bench-big-")
        os.sync()
        memory = rss_growth(ours, arbiter.pid, big, big_digest)

    med = statistics.median
    rows = [
        Row(f"push {args.blob_mib} MiB blob (median of {args.repeats})", "MiB/s",
            med(push[ours.name]), med(push[theirs.name]), True),
        Row(f"pull {args.blob_mib} MiB blob (median of {args.repeats})", "MiB/s",
            med(pull[ours.name]), med(pull[theirs.name]), True),
        Row(f"pull small image: manifest+config+3 layers (median of {args.image_pulls})", "ms",
            med(images[ours.name]), med(images[theirs.name]), False),
        Row(f"manifest GET, {args.connections} connections (median of {args.load_runs})", "req/s",
            med(manifests[ours.name]), med(manifests[theirs.name]), True),
    ]
    width = 66
    print()
    print(f"{'measurement':<{width}} {'unit':>6} {'ecr-emulator':>13} {'Distribution':>13} {'ours/dist':>10}")
    print("-" * (width + 45))
    for r in rows:
        print(f"{r.label:<{width}} {r.unit:>6} {r.ours:>13.1f} {r.theirs:>13.1f} {r.ratio:>10.2f}")
    print(f"{f'our worker RSS growth pushing a {args.big_mib} MiB layer':<{width}} {'MiB':>6} "
          f"{memory.growth_mib:>13.1f} {'-':>13} {'-':>10}")
    print("-" * (width + 45))
    print("(ms: lower is better; MiB/s and req/s: higher is better)")
    print("every run, in order:")
    for label, data in (("push MiB/s", push), ("pull MiB/s", pull), ("manifest req/s", manifests)):
        for name, values in data.items():
            print(f"  {label:<15} {name:<13} {' '.join(f'{v:.0f}' for v in values)}   (best {max(values):.0f})")
    for name, values in images.items():
        quartiles = statistics.quantiles(values, n=4)
        print(f"  {'image pull ms':<15} {name:<13} min {min(values):.2f}  p25 {quartiles[0]:.2f}  "
              f"median {med(values):.2f}  p75 {quartiles[2]:.2f}  max {max(values):.2f}")
    print(f"  RSS (our worker) before {memory.before_mib:.1f} MiB, peak {memory.peak_mib:.1f} MiB, after "
          f"{memory.after_mib:.1f} MiB; the push ran at {args.big_mib / memory.push_seconds:.0f} MiB/s; "
          f"{memory.how}")

    push_row, pull_row, image_row, manifest_row = rows
    bars = [
        ("pulls >= 1.0x Distribution: blob pull throughput", pull_row.speed_ratio >= 1.0,
         f"{pull_row.speed_ratio:.2f}x"),
        ("pulls >= 1.0x Distribution: small image pull time", image_row.speed_ratio >= 1.0,
         f"{image_row.speed_ratio:.2f}x as fast"),
        ("pulls >= 1.0x Distribution: manifest GET req/s", manifest_row.speed_ratio >= 1.0,
         f"{manifest_row.speed_ratio:.2f}x"),
        ("pushes >= 0.8x Distribution: blob push throughput", push_row.speed_ratio >= 0.8,
         f"{push_row.speed_ratio:.2f}x"),
        (f"RSS growth < 100 MiB pushing a {args.big_mib} MiB layer", memory.growth_mib < 100,
         f"{memory.growth_mib:.1f} MiB"),
    ]
    print("\nverdict (a report, not a test: the exit status is 0 either way):")
    for label, ok, figure in bars:
        print(f"  {'PASS' if ok else 'FAIL'}  {label:<56} {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
