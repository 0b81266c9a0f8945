"""Benchmark clients for the registry benchmark: pushes, pulls, manifest load, worker RSS.

Used by scripts/bench/registry.py; the same client code drives both servers.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from registry_targets import MIB, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, REPO, TAG, Target

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


def push_blob_chunked(target: Target, path: Path, digest: str, chunk_mib: int = 32) -> float:
    """POST an upload, PATCH the file in ``chunk_mib`` pieces (Content-Range, one keep-alive
    connection, 1 MiB socket writes), then PUT ?digest= without a body. Returns seconds."""
    started = time.perf_counter()
    status, headers, _ = call(target, "POST", f"/v2/{REPO}/blobs/uploads/")
    if status != 202:
        raise RuntimeError(f"{target.name}: POST upload answered {status}")
    location = headers["location"]
    size, step = path.stat().st_size, chunk_mib * MIB
    conn = http.client.HTTPConnection(target.host, target.port, timeout=300, blocksize=MIB)
    try:
        with open(path, "rb") as fh:
            for first in range(0, size, step):
                length = min(step, size - first)
                url = urlsplit(urljoin(target.base, location))
                conn.request("PATCH", url.path + (f"?{url.query}" if url.query else ""), body=_Slice(fh, length),
                             headers={**target.headers, "Content-Type": "application/octet-stream",
                                      "Content-Length": str(length),
                                      "Content-Range": f"{first}-{first + length - 1}"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 202:
                    raise RuntimeError(f"{target.name}: PATCH answered {resp.status}")
                location = resp.getheader("Location", location)
        url = urlsplit(put_url(target, location, digest))
        conn.request("PUT", url.path + f"?{url.query}", headers={**target.headers, "Content-Length": "0"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 201:
            raise RuntimeError(f"{target.name}: PUT blob answered {resp.status}")
    finally:
        conn.close()
    return time.perf_counter() - started


class _Slice:
    """The next ``length`` bytes of a file, as a request body http.client streams."""

    def __init__(self, fh, length: int) -> None:  # type: ignore[no-untyped-def]
        self.fh, self.left = fh, length

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            return b""
        data = self.fh.read(self.left if size < 0 else min(size, self.left))
        self.left -= len(data)
        return data


def push_image_like_docker(target: Target, tag: str) -> float:
    """A small image pushed the way docker/containerd push: per blob (config and three 4-6 KiB
    layers, fresh random bytes each time) HEAD (absent), POST, PATCH with the bytes, PUT
    ?digest= without a body; then the manifest PUT; one keep-alive connection. Returns seconds."""
    layers = [os.urandom(4096 + 1024 * i) for i in range(3)]
    layer_digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                                                          "diff_ids": layer_digests}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
                   "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": len(b)} for d, b in zip(layer_digests, layers,
                                                                                      strict=True)],
    }).encode()
    conn = http.client.HTTPConnection(target.host, target.port, timeout=60)

    def send(method: str, url: str, body: bytes | None = None, **headers: str) -> http.client.HTTPResponse:
        parts = urlsplit(urljoin(target.base, url))
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body,
                     headers={**target.headers, **headers})
        resp = conn.getresponse()
        resp.read()
        return resp

    started = time.perf_counter()
    try:
        for data in [config, *layers]:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            if send("HEAD", f"/v2/{REPO}/blobs/{digest}").status != 404:
                raise RuntimeError(f"{target.name}: a fresh blob already exists")
            resp = send("POST", f"/v2/{REPO}/blobs/uploads/", b"", **{"Content-Length": "0"})
            if resp.status != 202:
                raise RuntimeError(f"{target.name}: POST upload answered {resp.status}")
            resp = send("PATCH", resp.getheader("Location", ""), data,
                        **{"Content-Type": "application/octet-stream"})
            if resp.status != 202:
                raise RuntimeError(f"{target.name}: PATCH answered {resp.status}")
            resp = send("PUT", put_url(target, resp.getheader("Location", ""), digest), b"",
                        **{"Content-Length": "0"})
            if resp.status != 201:
                raise RuntimeError(f"{target.name}: PUT blob answered {resp.status}")
        resp = send("PUT", f"/v2/{REPO}/manifests/{tag}", manifest, **{"Content-Type": OCI_MANIFEST})
        if resp.status != 201:
            raise RuntimeError(f"{target.name}: PUT manifest answered {resp.status}")
    finally:
        conn.close()
    return time.perf_counter() - started


def sha256_rates(seconds: float = 2.0) -> dict[str, float]:
    """MiB/s of sha256 on one core, for hashlib (what Distribution's Go sha256 compares with) and
    for rehashes (the resumable state our uploads keep), over 4 MiB pieces of random data."""
    from rehashes import PySha256

    data = os.urandom(4 * MIB)
    rates = {}
    for name, make in (("hashlib", hashlib.sha256), ("rehashes", PySha256)):
        best = 0.0
        for _ in range(3):
            h, done, started = make(), 0, time.perf_counter()
            while time.perf_counter() - started < seconds / 3:
                h.update(data)
                done += len(data)
            best = max(best, done / MIB / (time.perf_counter() - started))
        rates[name] = best
    return rates


def pull_blob(target: Target, digest: str, size: int, follow: bool = False) -> float:
    """GET the blob on a fresh connection, read into one reused 8 MiB buffer. Returns seconds.
    With ``follow``, a redirect is followed (to the object store, without our credentials) and
    timed with it, as a client following it would be.

    http.client's ``readinto`` on a large buffer costs one ``recv_into`` per socket read and no
    allocation; measured here it outran ``curl -o /dev/null`` by about 20%, so the figure says
    more about the server than about the client.
    """
    view = memoryview(bytearray(8 * MIB))
    started = time.perf_counter()
    url, headers = urljoin(target.base, f"/v2/{REPO}/blobs/{digest}"), target.headers
    for _hop in range(3):
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
        try:
            conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
            resp = conn.getresponse()
            if follow and resp.status in (301, 302, 303, 307, 308):
                resp.read()
                url, headers = urljoin(url, resp.getheader("Location", "")), {}
                continue
            got = 0
            while n := resp.readinto(view):
                got += n
            break
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


def push_image(target: Target, tag: str = TAG) -> None:
    """A small image (three random layers, a config) under ``tag``: blob POST/PUT, manifest PUT."""
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
    status, _, body = call(target, "PUT", f"/v2/{REPO}/manifests/{tag}", manifest, {"Content-Type": OCI_MANIFEST})
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


