#!/usr/bin/env python3
"""Blob store benchmark: the S3 driver beside the filesystem driver and beside CNCF Distribution
with its S3 driver, all on the same S3-compatible server; and manifest GETs/s of two replicas
beside one.

    python scripts/bench/blobstore.py            # ~5 minutes, ~1.5 GiB of temporary disk and memory
    python scripts/bench/blobstore.py --help     # sizes, repeats, durations, --tmp

Run it from the repository root with the project's Python (boto3, moto[server] from the test
extra installed). It needs ``curl``, Distribution from the Debian package ``docker-registry`` and
PostgreSQL's binaries (``apt-get install docker-registry postgresql``); ``wrk`` drives the
manifest load when present. Everything runs on loopback only, on free ports, with throw-away
data (moto's S3 server keeps its objects in memory; a throw-away PostgreSQL cluster for the
replicas), and is stopped by PID at the end, also on errors.

Measured, rounds interleaved, medians printed with every run:
- push of a 256 MiB random blob (POST + streamed PUT ?digest=) and pull of it, through
  ecr-emulator on the filesystem driver, on the S3 driver (pulls streamed through the emulator,
  and pulls redirected to a presigned URL with ``--blob-redirect``), and Distribution with its S3
  driver on the same moto server (redirected pulls, its default);
- manifest GETs per second from 16 connections: two replicas (PostgreSQL + S3, one worker
  process each, different data directories) against one of them alone.
Ratios: our S3 driver to our filesystem driver, our S3 driver to Distribution's, two replicas to
one. The exit status is 0 either way: a report, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
from contextlib import ExitStack
from pathlib import Path

from registry import interleaved, synced_push
from registry_clients import pull_blob, push_image, python_rps, random_file, wrk_rps
from registry_targets import DISTRIBUTION, MIB, Target, distribution, ecr_emulator

from tests import postgres, s3server  # registry_targets put the repository root on sys.path


def s3_section(moto: s3server.S3Server, bucket: str) -> str:
    """Distribution's storage section for the same S3 server."""
    return (f"  s3:\n    accesskey: {s3server.ACCESS_KEY}\n    secretkey: {s3server.SECRET_KEY}\n"
            f"    region: {s3server.REGION}\n    regionendpoint: {moto.endpoint_url}\n    bucket: {bucket}\n"
            "    secure: false\n    v4auth: true\n    forcepathstyle: true\n    rootdirectory: /distribution\n")


def both_at_once(targets: list[Target], rps, seconds: float, connections: int) -> float:  # type: ignore[no-untyped-def]
    """Load every target at the same moment, ``connections`` split between them; the summed req/s."""
    results = [0.0] * len(targets)

    def load(i: int) -> None:
        results[i] = rps(targets[i], seconds, max(connections // len(targets), 1))

    threads = [threading.Thread(target=load, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blob-mib", type=int, default=256, help="size of the push/pull blob (256)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each push/pull figure (3)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each manifest load run (10)")
    parser.add_argument("--load-runs", type=int, default=3, help="manifest load runs per setup (3)")
    parser.add_argument("--connections", type=int, default=16, help="connections of the manifest load (16)")
    parser.add_argument("--tmp", default=None, help="parent directory for temporary data (system default)")
    args = parser.parse_args()

    if not os.access(DISTRIBUTION, os.X_OK) or shutil.which("curl") is None:
        print(f"needs CNCF Distribution ({DISTRIBUTION}) and curl: apt-get install docker-registry curl")
        return 0
    rps = wrk_rps if shutil.which("wrk") else python_rps
    print("blob store benchmark: ecr-emulator filesystem and S3 drivers, CNCF Distribution's S3 driver, on one "
          "moto S3 server; replicas on PostgreSQL")
    print(f"NOTE: {os.cpu_count()} shared CPUs carry the clients, moto, PostgreSQL and every server: single "
          "figures move by +-30%; ratios of interleaved medians are what counts.")
    print(f"manifest load: {'wrk' if rps is wrk_rps else 'threaded Python http.client (wrk not found)'}, "
          f"{args.connections} connections, {int(args.duration)} s a run")

    med = statistics.median
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecr-bench-s3-", dir=args.tmp)))
        moto = s3server.start()
        stack.callback(moto.stop)
        stack.callback(postgres.stop)
        env = moto.env()
        for name in ("fs", "s3", "dist"):
            (work / name).mkdir()
        fs, _ = stack.enter_context(ecr_emulator(work / "fs", name="ours fs"))
        s3, _ = stack.enter_context(ecr_emulator(
            work / "s3", "--blob-store", f"s3://{moto.new_bucket()}/bench", env=env, name="ours s3"))
        redirected, _ = stack.enter_context(ecr_emulator(
            work / "s3", "--blob-store", f"s3://{moto.new_bucket()}/bench", "--blob-redirect", env=env,
            name="ours s3+redirect", data="ecr-data-redirect"))
        dist = stack.enter_context(distribution(work / "dist", s3_section(moto, moto.new_bucket()),
                                                name="Distribution s3"))
        targets = [fs, s3, redirected, dist]
        size = args.blob_mib * MIB
        blobs = []
        for i in range(args.repeats):  # a distinct blob per run and server: nobody skips bytes it has
            path = work / f"blob-{i}"
            blobs.append((path, random_file(path, size, seed=f"bench-s3-{i}-".encode())))
        for t in targets:
            push_image(t)  # warm up
        print("measuring pushes and pulls ...", flush=True)
        push = interleaved(targets, args.repeats, lambda t, i: args.blob_mib / synced_push(t, *blobs[i]))
        pull = interleaved(targets, args.repeats,
                           lambda t, i: args.blob_mib / pull_blob(t, blobs[i][1], size, follow=True))
        for path, _ in blobs:
            path.unlink()

        print("measuring manifest GETs of one and two replicas ...", flush=True)
        shared_env = dict(env, ECR_EMULATOR_DATABASE_URL=postgres.new_database())
        bucket = f"s3://{moto.new_bucket()}/replicas"
        replicas = [stack.enter_context(ecr_emulator(work / "s3", "--blob-store", bucket, "--workers", "1",
                                                     env=shared_env, name=f"replica {n}", data=f"replica-{n}"))[0]
                    for n in ("a", "b")]
        push_image(replicas[0])
        one = [rps(replicas[0], args.duration, args.connections) for _ in range(args.load_runs)]
        two = [both_at_once(replicas, rps, args.duration, args.connections) for _ in range(args.load_runs)]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}" if b else "-"

    print()
    print(f"{'median of ' + str(args.repeats) + ' runs':<24}{'push MiB/s':>12}{'pull MiB/s':>12}")
    for t in targets:
        print(f"{t.name:<24}{med(push[t.name]):>12.1f}{med(pull[t.name]):>12.1f}")
    p, q = {n: med(v) for n, v in push.items()}, {n: med(v) for n, v in pull.items()}
    print(f"push: ours s3 / ours fs {ratio(p['ours s3'], p['ours fs'])}, "
          f"ours s3 / Distribution s3 {ratio(p['ours s3'], p['Distribution s3'])}")
    print(f"pull streamed by us: ours s3 / ours fs {ratio(q['ours s3'], q['ours fs'])}, "
          f"ours s3 / Distribution s3 (redirected) {ratio(q['ours s3'], q['Distribution s3'])}")
    print(f"pull redirected by both: ours s3+redirect / Distribution s3 "
          f"{ratio(q['ours s3+redirect'], q['Distribution s3'])}")
    print(f"manifest GETs/s, {args.connections} connections (median of {args.load_runs}): one replica "
          f"{med(one):.0f}, two replicas {med(two):.0f}, two/one {ratio(med(two), med(one))}")
    print("every run, in order:")
    for label, data in (("push MiB/s", push), ("pull MiB/s", pull)):
        for name, values in data.items():
            print(f"  {label:<11} {name:<18} {' '.join(f'{v:.0f}' for v in values)}")
    print(f"  manifest req/s one replica {' '.join(f'{v:.0f}' for v in one)}; two {' '.join(f'{v:.0f}' for v in two)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
