"""Lifecycle benchmark: preview and execution time on a repository of 10,000 images, 20 rules.

    python scripts/bench/lifecycle.py [--images 10000]

The repository is filled in-process through the same core code a push runs (PutImage's
``put_image``), with pushes spread over 400 days of the emulator clock; then a real server
is started on that data directory and timed through boto3 (StartLifecyclePolicyPreview until
GetLifecyclePolicyPreview says COMPLETE) and through the test-control API (a full run that
expires and archives for real). The bar: preview under 2 s.

There is no peer to compare with: moto stores lifecycle policies but never evaluates them,
and CNCF Distribution has no lifecycle policies. The machine is shared and noisy; figures
are wall-clock times of one run each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import boto3
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecr_emulator import config  # noqa: E402
from ecr_emulator.core import repositories, uploads  # noqa: E402
from ecr_emulator.core.bootstrap import build_services  # noqa: E402
from ecr_emulator.core.images.put import put_image  # noqa: E402
from ecr_emulator.core.naming import Scope  # noqa: E402
from tests.server import start_server  # noqa: E402

DAY = 86400
REPO = "bench/lifecycle"
SCOPE = Scope("123456789012", "us-east-1")


def rules() -> list[dict]:
    out = []
    for i, team in enumerate(["api", "web", "worker", "batch", "ml", "data", "infra", "auth"], start=1):
        out.append({"rulePriority": i, "selection": {"tagStatus": "tagged", "tagPatternList": [f"{team}-*-rc*"],
                                                     "countType": "imageCountMoreThan", "countNumber": 20},
                    "action": {"type": "expire"}})
    for i, team in enumerate(["api", "web", "worker", "batch", "ml", "data", "infra", "auth"], start=9):
        out.append({"rulePriority": i, "selection": {"tagStatus": "tagged", "tagPrefixList": [f"{team}-"],
                                                     "countType": "sinceImagePushed", "countUnit": "days",
                                                     "countNumber": 180},
                    "action": {"type": "expire"}})
    out.append({"rulePriority": 17, "selection": {"tagStatus": "tagged", "tagPatternList": ["release-*"],
                                                  "countType": "sinceImagePulled", "countUnit": "days",
                                                  "countNumber": 90},
                "action": {"type": "transition", "targetStorageClass": "archive"}})
    out.append({"rulePriority": 18, "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed",
                                                  "countUnit": "days", "countNumber": 14},
                "action": {"type": "expire"}})
    out.append({"rulePriority": 19, "selection": {"tagStatus": "untagged", "storageClass": "archive",
                                                  "countType": "sinceImageTransitioned", "countUnit": "days",
                                                  "countNumber": 90},
                "action": {"type": "expire"}})
    out.append({"rulePriority": 20, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                  "countNumber": 5000},
                "action": {"type": "expire"}})
    return out


def fill(data_dir: Path, count: int) -> float:
    """Push ``count`` small images through core.put_image, pushed over the last 400 days."""
    services = build_services(config.load(environ={"ECR_EMULATOR_DATA_DIR": str(data_dir)}))
    rng = random.Random(7)
    teams = ["api", "web", "worker", "batch", "ml", "data", "infra", "auth"]
    started = time.perf_counter()
    now = services.clock.now()
    with services.unit(SCOPE, write=True) as ctx:
        repo = repositories.create(ctx, REPO)
        config_blob = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
                                                                                    "diff_ids": []}}).encode()
        layer = os.urandom(1024)
        digests = {}
        for data in (config_blob, layer):
            upload = uploads.initiate(ctx, REPO)
            uploads.append(services, upload.id, [data])
            digests[data] = uploads.commit(ctx, repo, upload, "sha256:" + hashlib.sha256(data).hexdigest(),
                                           exists_ok=True)
    batch = 500
    for start in range(0, count, batch):
        with services.unit(SCOPE, write=True) as ctx:
            for i in range(start, min(start + batch, count)):
                ctx.now = now - (count - i) * (400 * DAY / count)
                team = rng.choice(teams)
                kind = rng.random()
                tag = None
                if kind < 0.4:
                    tag = f"{team}-{i}-rc{i % 7}"
                elif kind < 0.7:
                    tag = f"{team}-{i}"
                elif kind < 0.8:
                    tag = f"release-{i}"
                manifest = {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                               "digest": digests[config_blob], "size": len(config_blob)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": digests[layer], "size": len(layer)}],
                    "annotations": {"n": str(i)},
                }
                put_image(ctx, REPO, json.dumps(manifest).encode(), tag=tag)
    services.db.dispose()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ecr-bench-lc-") as tmp:
        data_dir = Path(tmp) / "data"
        fill_seconds = fill(data_dir, args.images)
        server = start_server(data_dir, "--job-workers", "1", "--job-poll-interval", "0.05")
        try:
            ecr = boto3.client("ecr", endpoint_url=server.api_url, region_name="us-east-1",
                               aws_access_key_id="bench", aws_secret_access_key="bench")
            text = json.dumps({"rules": rules()})
            ecr.put_lifecycle_policy(repositoryName=REPO, lifecyclePolicyText=text)
            started = time.perf_counter()
            ecr.start_lifecycle_policy_preview(repositoryName=REPO)
            while True:
                out = ecr.get_lifecycle_policy_preview(repositoryName=REPO, maxResults=100)
                if out["status"] != "IN_PROGRESS":
                    break
                time.sleep(0.02)
            preview_seconds = time.perf_counter() - started
            summary = out["summary"]
            started = time.perf_counter()
            run = requests.post(f"{server.api_url}/_emulator/lifecycle/run", json={"repository": REPO},
                                timeout=600).json()["runs"][0]
            run_seconds = time.perf_counter() - started
            remaining = sum(len(p["imageIds"]) for p in ecr.get_paginator("list_images").paginate(
                repositoryName=REPO, filter={"imageStatus": "ANY", "tagStatus": "ANY"}))
        finally:
            server.stop()
    print(f"repository: {args.images} images, 20 rules (filled in {fill_seconds:.1f} s)")
    print(f"preview:    {preview_seconds:6.2f} s  status {out['status']}, summary {summary}")
    print(f"execution:  {run_seconds:6.2f} s  expired {len(run['expired'])}, archived {len(run['transitioned'])}, "
          f"skipped {len(run['skipped'])}, image ids left {remaining}")
    print("peer: none (moto stores policies without evaluating them; Distribution has no lifecycle)")
    verdict = "PASS" if preview_seconds < 2.0 else "FAIL"
    print(f"bar: preview under 2 s ... {verdict}  (shared 2-core machine: wall-clock, one run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
