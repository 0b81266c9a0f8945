#!/usr/bin/env python3
"""Replication benchmark: how fast images reach another region of a running emulator.

    python scripts/bench/replication.py              # ~1 minute
    python scripts/bench/replication.py --images 1000 --pushes 20

Measured on a server started as users start it (``serve``, background job threads on):

- push to COMPLETE: a rule sends every repository to us-west-2; an image is pushed with PutImage
  and DescribeImageReplicationStatus is polled until it says COMPLETE (median of ``--pushes``);
- backfill: ``--images`` images already stored (distinct manifests sharing one config and one
  layer, so setting them up is quick) are backfilled to us-west-2; images replicated per second
  from StartReplicationBackfill to COMPLETE;
- for scale, the rate of PutImage itself on the same server (the work a copy repeats at the
  destination) and the ratio of the backfill rate to it.

No peer emulator replicates (moto stores the configuration only; Distribution has no
replication), so the reference is our own PutImage rate. A report, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.images import build_image, push_via_api  # noqa: E402
from tests.server import make_client, start_server  # noqa: E402

ACCOUNT, WEST = "123456789012", "us-west-2"


def wait(probe, timeout: float = 600.0, interval: float = 0.01):  # type: ignore[no-untyped-def]
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"not done within {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--pushes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ecr-bench-replication-") as tmp:
        live = start_server(Path(tmp) / "data", env={"ECR_EMULATOR_LOG_LEVEL": "warning"})
        try:
            ecr = make_client(live)
            rule = {"destinations": [{"region": WEST, "registryId": ACCOUNT}]}

            ecr.create_repository(repositoryName="live")
            ecr.put_replication_configuration(replicationConfiguration={"rules": [rule]})
            latencies = []
            for i in range(args.pushes):
                image = build_image()
                started = time.perf_counter()
                push_via_api(ecr, "live", image, f"v{i}")
                wait(lambda i=i: {s["status"] for s in ecr.describe_image_replication_status(
                    repositoryName="live", imageId={"imageTag": f"v{i}"})["replicationStatuses"]} == {"COMPLETE"})
                latencies.append(time.perf_counter() - started)

            ecr.put_replication_configuration(replicationConfiguration={"rules": []})
            ecr.create_repository(repositoryName="backlog")
            base = build_image()
            push_via_api(ecr, "backlog", base, "base")
            manifest = json.loads(base.manifest)
            put_started = time.perf_counter()
            for i in range(args.images - 1):
                manifest["annotations"] = {"n": str(i)}
                ecr.put_image(repositoryName="backlog", imageTag=f"t{i}", imageManifest=json.dumps(manifest))
            put_rate = (args.images - 1) / (time.perf_counter() - put_started)
            ecr.put_replication_configuration(replicationConfiguration={"rules": [rule]})
            started = time.perf_counter()
            backfill = ecr.start_replication_backfill(destination={"region": WEST, "registryId": ACCOUNT})
            done = wait(lambda: (lambda r: r if r["status"] not in ("PREPARING", "IN_PROGRESS") else None)(
                ecr.describe_replication_backfill_results(replicationBackfillId=backfill["replicationBackfillId"],
                                                          maxResults=1)), interval=0.2)
            seconds = time.perf_counter() - started
        finally:
            live.stop()
    progress = done["progress"]
    rate = progress["completedReplicationCount"] / seconds
    print(f"push to COMPLETE (PutImage + copy to {WEST}, background jobs): median "
          f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms over {args.pushes}")
    print(f"backfill of {args.images} images: {done['status']}, {progress['completedReplicationCount']} copied, "
          f"{progress['failedReplicationCount']} failed in {seconds:.1f} s = {rate:.0f} images/s")
    print(f"PutImage on the same server: {put_rate:.0f} images/s; backfill / PutImage = {rate / put_rate:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
