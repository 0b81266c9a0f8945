"""Benchmark: time to scan an image of ~500 packages against ~50,000 advisories (bar: under 5 s).

The advisories are SYNTHETIC (ids ``SYNTH-*``, generated here at random with a fixed seed; they
describe no real vulnerability) so the figure does not depend on downloading a real export. The
image is real in shape: a Debian 12 dpkg status with 300 packages, 100 Python dist-infos and 100
npm packages, split over three gzip layers. What is timed is the ``scan-image`` job end to end:
read the image rows, stream and apply the layers, inventory, match, store the findings.

    python scripts/bench/scan.py [--advisories 50000] [--packages 500]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ecr_emulator.config import Settings  # noqa: E402
from ecr_emulator.core.bootstrap import build_services  # noqa: E402
from ecr_emulator.core.naming import Scope  # noqa: E402
from ecr_emulator.core.scanning import runner, scans  # noqa: E402
from ecr_emulator.core.vulndb import osv, store  # noqa: E402
from ecr_emulator.storage.models import ImageScan  # noqa: E402
from tests.images import push_in_process  # noqa: E402

CVSS = ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L"]
ECOSYSTEMS = {"dpkg": "Debian:12", "python": "PyPI", "npm": "npm"}


def synthetic_records(count: int, names: dict[str, list[str]], rng: random.Random) -> list[osv.Advisory]:
    kinds = list(names)
    out = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        package = rng.choice(names[kind])
        fixed = f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
        record = {
            "id": f"SYNTH-{i:06d}", "modified": "2026-01-01T00:00:00Z",
            "summary": "synthetic benchmark advisory (not a real vulnerability)",
            "severity": [{"type": "CVSS_V3", "score": rng.choice(CVSS)}],
            "affected": [{"package": {"ecosystem": ECOSYSTEMS[kind], "name": package},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}]}],
        }
        out.append(osv.parse(record))
    return out


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), 6)


def image_layers(names: dict[str, list[str]], per_kind: dict[str, int], rng: random.Random) -> list[bytes]:
    def version() -> str:
        return f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"

    stanzas = [f"Package: {n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version()}-1\n"
               for n in names["dpkg"][: per_kind["dpkg"]]]
    os_layer = {"usr/lib/os-release": b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n',
                "var/lib/dpkg/status": "\n".join(stanzas).encode()}
    site = "usr/local/lib/python3.11/site-packages"
    py_layer = {f"{site}/{n}-1.0.dist-info/METADATA": f"Name: {n}\nVersion: {version()}\n".encode()
                for n in names["python"][: per_kind["python"]]}
    npm_layer = {f"app/node_modules/{n}/package.json": json.dumps({"name": n, "version": version()}).encode()
                 for n in names["npm"][: per_kind["npm"]]}
    return [tar_gz(os_layer), tar_gz(py_layer), tar_gz(npm_layer)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--advisories", type=int, default=50_000)
    parser.add_argument("--packages", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(20261122)
    names = {kind: [f"{kind}-pkg-{i}" for i in range(5000)] for kind in ECOSYSTEMS}
    per_kind = {"dpkg": args.packages * 3 // 5, "python": args.packages // 5}
    per_kind["npm"] = args.packages - per_kind["dpkg"] - per_kind["python"]

    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=tmp, vulndb_seed="", job_workers=0))
        started = time.perf_counter()
        report = store.ImportReport()
        records = synthetic_records(args.advisories, names, rng)
        services.db.run(lambda session: store.store(session, records, report), write=True)
        import_seconds = time.perf_counter() - started

        scope = Scope("123456789012", "us-east-1")
        layers = image_layers(names, per_kind, rng)
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        blobs = [(config, "application/vnd.oci.image.config.v1+json")] + [
            (data, "application/vnd.oci.image.layer.v1.tar+gzip") for data in layers]
        with services.unit(scope, write=True) as ctx:
            image = push_in_process(ctx, "bench", blobs, "bench").image
            scans.begin(ctx, image, "BASIC")
            payload = {"account": scope.account_id, "region": scope.region, "imageId": image.id,
                       "scanType": "BASIC", "startedAt": ctx.now}

        started = time.perf_counter()
        runner.run_scan_job(services, payload)
        scan_seconds = time.perf_counter() - started
        with services.unit(scope) as ctx:
            row = ctx.session.scalars(select(ImageScan).where(ImageScan.image_id == payload["imageId"])).one()
            status, counts = row.status, row.severity_counts or {}
        services.db.dispose()

    print(f"advisories: {args.advisories} SYNTHETIC OSV records (ids SYNTH-*, not real vulnerabilities), "
          f"imported in {import_seconds:.2f} s")
    print(f"image: {args.packages} packages ({per_kind['dpkg']} dpkg, {per_kind['python']} Python, "
          f"{per_kind['npm']} npm) in 3 gzip layers")
    print(f"scan: {status}, {sum(counts.values())} findings {counts}")
    print(f"scan time: {scan_seconds:.3f} s (bar: under 5 s) -> {'PASS' if scan_seconds < 5 else 'FAIL'}")


if __name__ == "__main__":
    main()
