#!/usr/bin/env python3
"""Pull latency under push load: ecr-emulator beside CNCF Distribution, same clients.

    python scripts/bench/mixed_load.py              # ~1 minute
    python scripts/bench/mixed_load.py --seconds 30 --pushers 4 --pullers 8

For each server: ``--pushers`` threads push small images (three blobs, a config, a manifest
under a new tag each time) while ``--pullers`` threads GET the manifest of a tag pushed
before the load started, each on its own kept-alive connection, and record every GET's
latency. Printed: manifest GET p50/p99/max and GETs/s, pushes/s, and the ratio of our p99 to
Distribution's. Servers run on loopback on free ports with throw-away data and are stopped by
PID. A report, not a test: the exit status is 0 either way.

Why: a manifest GET used to write the pull time in its own write transaction, so on SQLite
pulls queued behind pushes for the single write lock (p99 1.45 s, max 5.2 s under this load).
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from registry_clients import push_image
from registry_targets import OCI_MANIFEST, REPO, TAG, Target, distribution, ecr_emulator


def measure(target: Target, seconds: float, pushers: int, pullers: int) -> dict[str, float]:
    push_image(target)  # the tag every puller reads
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(pullers)]
    pushes = [0] * pushers
    errors: list[str] = []

    def pull(i: int) -> None:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=120)
        headers = {**target.headers, "Accept": OCI_MANIFEST}
        while not stop.is_set():
            started = time.perf_counter()
            conn.request("GET", f"/v2/{REPO}/manifests/{TAG}", headers=headers)
            resp = conn.getresponse()
            resp.read()
            latencies[i].append(time.perf_counter() - started)
            if resp.status != 200:
                errors.append(f"GET {resp.status}")
        conn.close()

    def push(i: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                push_image(target, f"load-{i}-{n}")
            except RuntimeError as exc:
                errors.append(str(exc))
            n += 1
            pushes[i] = n

    threads = [threading.Thread(target=pull, args=(i,)) for i in range(pullers)]
    threads += [threading.Thread(target=push, args=(i,)) for i in range(pushers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(120)
    every = sorted(x for lat in latencies for x in lat)
    return {
        "p50_ms": statistics.median(every) * 1000,
        "p99_ms": every[int(len(every) * 0.99) - 1] * 1000,
        "max_ms": every[-1] * 1000,
        "gets_per_s": len(every) / seconds,
        "pushes_per_s": sum(pushes) / seconds,
        "errors": len(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pushers", type=int, default=4)
    parser.add_argument("--pullers", type=int, default=8)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="ecr-bench-mixed-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        (work / "ours").mkdir()
        (work / "peer").mkdir()
        ours, _proc = stack.enter_context(ecr_emulator(work / "ours"))
        peer = stack.enter_context(distribution(work / "peer"))
        for target in (peer, ours):
            results[target.name] = measure(target, args.seconds, args.pushers, args.pullers)
    print(f"manifest GETs under push load ({args.pullers} pullers, {args.pushers} pushers, {args.seconds:.0f} s)")
    print(f"{'server':<14}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'GETs/s':>9}{'pushes/s':>10}{'errors':>8}")
    for name, r in results.items():
        print(f"{name:<14}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['max_ms']:>9.1f}{r['gets_per_s']:>9.0f}"
              f"{r['pushes_per_s']:>10.1f}{r['errors']:>8}")
    ours, peer = results["ecr-emulator"], results["Distribution"]
    print(f"p99 ratio (ours / Distribution): {ours['p99_ms'] / peer['p99_ms']:.2f}  "
          f"(under 1 means our pulls wait less)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
