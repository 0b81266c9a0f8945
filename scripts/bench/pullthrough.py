#!/usr/bin/env python3
"""Pull-through cache benchmark: a 100 MiB image pulled through ecr-emulator's cache from a CNCF
Distribution upstream (first pull: a cache miss; second pull: from the cache) against the same
pull straight from the upstream, with the same client.

    python scripts/bench/pullthrough.py            # about a minute, ~1 GiB of temporary disk
    python scripts/bench/pullthrough.py --help     # size, layers, repeats, --tmp

Run it from the repository root with the project's Python. It needs skopeo and Distribution
(Debian's ``docker-registry``). Both servers run on loopback on free ports with throw-away data
(Distribution with its own config file) and are stopped by PID at the end, also on errors. The
emulator reaches the upstream through ``--upstream-endpoint quay.io=<Distribution>``, under a rule
``quay`` -> ``quay.io``. Each round pulls with ``skopeo copy docker://... dir:...`` (layers
fetched in parallel, written to disk): straight from Distribution, then through the emulator
after a reset (the miss: the emulator fetches, verifies and stores every blob before it answers
the manifest, then serves them), then again (the hit). Medians of the rounds are printed with
every run, and the ratios to the direct pull.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from registry_clients import REPO, call, push_blob, push_small, random_file
from registry_targets import DISTRIBUTION, MIB, distribution

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for tests.server

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TAG = "big"


def push_upstream(target, workdir: Path, mib: int, layers: int) -> int:  # type: ignore[no-untyped-def]
    """A ``mib`` MiB image of ``layers`` random layers (and a config) in Distribution at REPO:TAG."""
    descriptors = []
    for i in range(layers):
        path = workdir / f"layer{i}"
        size = mib * MIB // layers
        digest = random_file(path, size, seed=f"layer {i} ".encode())
        push_blob(target, path, digest)
        path.unlink()
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
                            "size": size})
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    digest = push_small(target, config.encode())
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": descriptors, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": len(config)}}).encode()
    status, _, body = call(target, "PUT", f"/v2/{REPO}/manifests/{TAG}", manifest, {"Content-Type": OCI_MANIFEST})
    if status != 201:
        raise RuntimeError(f"pushing the manifest answered {status}: {body[:200]!r}")
    return sum(d["size"] for d in descriptors) + len(config)


def skopeo_pull(reference: str, dest: Path, creds: str | None) -> float:
    """Seconds ``skopeo copy`` takes to pull ``reference`` into a ``dir:`` layout."""
    shutil.rmtree(dest, ignore_errors=True)
    cmd = ["skopeo", "copy", "--src-tls-verify=false", *(["--src-creds", creds] if creds else []),
           f"docker://{reference}", f"dir:{dest}"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr}")
    shutil.rmtree(dest, ignore_errors=True)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=100, help="image size in MiB (default 100)")
    parser.add_argument("--layers", type=int, default=4, help="layers the image is split into (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--tmp", default=None, help="directory for temporary data (default: the system's)")
    args = parser.parse_args()
    for tool, hint in ((DISTRIBUTION, "apt-get install docker-registry"), ("skopeo", "apt-get install skopeo")):
        if shutil.which(tool) is None:
            print(f"{tool} is missing; install it with: {hint}")
            return 1
    from tests.server import make_client, start_server

    print(f"pull-through cache benchmark: a {args.mib} MiB image in {args.layers} layers, {args.repeats} rounds; "
          f"client skopeo copy docker:// -> dir: (this machine: {os.cpu_count()} CPUs, shared and noisy; read ratios)")
    runs: dict[str, list[float]] = {"direct from Distribution": [], "through the cache, miss": [],
                                    "through the cache, hit": []}
    with tempfile.TemporaryDirectory(prefix="bench-ptc-", dir=args.tmp) as tmp:
        work = Path(tmp)
        with distribution(work) as upstream:
            size = push_upstream(upstream, work, args.mib, args.layers)
            live = start_server(work / "ecr-data", "--upstream-endpoint", f"quay.io={upstream.base}",
                                env={"ECR_EMULATOR_LOG_LEVEL": "warning"})
            try:
                ecr = make_client(live, access_key="bench")
                token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
                creds = base64.b64decode(token).decode()
                cached = f"{live.registry}/quay/{REPO}:{TAG}"
                for n in range(args.repeats):
                    live.reset()
                    ecr.create_pull_through_cache_rule(ecrRepositoryPrefix="quay", upstreamRegistryUrl="quay.io")
                    runs["direct from Distribution"].append(
                        skopeo_pull(f"127.0.0.1:{upstream.port}/{REPO}:{TAG}", work / "pulled", None))
                    runs["through the cache, miss"].append(skopeo_pull(cached, work / "pulled", creds))
                    runs["through the cache, hit"].append(skopeo_pull(cached, work / "pulled", creds))
                    print(f"  round {n + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()), flush=True)
            finally:
                live.stop()
    direct = statistics.median(runs["direct from Distribution"])
    print()
    print(f"{'pull of the image':<28} {'median s':>9} {'MiB/s':>8} {'vs direct':>10}")
    print("-" * 58)
    for label, values in runs.items():
        median = statistics.median(values)
        print(f"{label:<28} {median:>9.2f} {size / MIB / median:>8.1f} {median / direct:>9.2f}x")
    print("-" * 58)
    print("(vs direct: time relative to the direct pull; lower is better)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
