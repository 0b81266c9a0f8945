"""Scan layer files in this process and print the peak memory growth the scan caused, as JSON.

``python tests/scan_probe.py LAYER...`` applies the layers bottom to top and takes the
inventory, as the scan job does; ``--job`` runs the whole ``scan-image`` job instead (an image
of those layers stored in a fresh data directory with the shipped advisories: stream, inventory,
match, store the findings). It prints ``{"growth_mib", "seconds", "outcome"}``: the outcome is
the packages and OS (or the scan's status and findings), or the ScanError. The growth is the
process's peak resident set after the scan minus a baseline taken just before it, with the peak
first reset to the current resident set. The memory tests run it in a subprocess; point
PYTHONPATH at another checkout to measure that one.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ecr_emulator.core.scanning import inventory, layers

MAX_UNPACKED = 8 * 1024**3  # the server's default --scan-max-unpacked-bytes
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def peak_kib() -> int:
    """This process's peak resident set: VmHWM. (``ru_maxrss`` also counts the peak of the process
    image before exec, i.e. of the forked parent, which would hide the growth of a small child.)"""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def baseline_kib() -> int:
    """The peak so far, first lowered to the current resident set (Linux's clear_refs "5") so that
    memory freed before the baseline (imports, setup) does not hide growth after it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return peak_kib()


def scan(paths: list[str]) -> dict[str, Any]:
    try:
        fs = layers.apply_layers([(f"sha256:{i:064x}", lambda p=p: open(p, "rb")) for i, p in enumerate(paths)],
                                 MAX_UNPACKED)
        found = inventory.take(fs)
        return {"packages": len(found.packages), "os": found.os.platform if found.os else None}
    except layers.ScanError as exc:
        return {"error": str(exc)}


def job(paths: list[str]) -> dict[str, Any]:
    """The scan-image job on an image of these layers, pushed and its push jobs run before the baseline."""
    from sqlalchemy import select

    from ecr_emulator.config import Settings
    from ecr_emulator.core import jobs
    from ecr_emulator.core.bootstrap import build_services
    from ecr_emulator.core.naming import Scope
    from ecr_emulator.core.scanning import scans
    from ecr_emulator.storage.models import Image, ImageScan, ImageScanFinding

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: tests/ is not on the path
    from tests.images import push_in_process

    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=tmp, job_workers=0))
        scope = Scope("123456789012", "us-east-1")
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        blobs = [(config, "application/vnd.oci.image.config.v1+json")]
        blobs += [(Path(p).read_bytes(), OCI_LAYER) for p in paths]
        with services.unit(scope, write=True) as ctx:
            image_id = push_in_process(ctx, "probe", blobs, "probe").image.id
        del blobs
        runner = jobs.JobRunner(services)
        runner.run_due()  # the push's own jobs and the periodic tasks, before the baseline
        with services.unit(scope, write=True) as ctx:
            scans.begin(ctx, ctx.session.get(Image, image_id), "BASIC")
        baseline = baseline_kib()
        runner.run_due()
        growth = peak_kib() - baseline
        with services.unit(scope) as ctx:
            row = ctx.session.scalars(select(ImageScan).where(ImageScan.image_id == image_id)).one()
            findings = ctx.session.query(ImageScanFinding).filter_by(scan_id=row.id).count()
            outcome = {"status": row.status, "findings": findings}
            if row.status == scans.FAILED:
                outcome["error"] = row.description
        services.db.dispose()
    return {"growth_kib": growth, "outcome": outcome}


def main(argv: list[str]) -> dict[str, Any]:
    whole_job = argv[:1] == ["--job"]
    paths = argv[1:] if whole_job else argv
    baseline, started = baseline_kib(), time.monotonic()
    if whole_job:
        result = job(paths)
        growth, outcome = result["growth_kib"], result["outcome"]
    else:
        outcome = scan(paths)
        growth = peak_kib() - baseline
    return {"growth_mib": round(growth / 1024, 1), "seconds": round(time.monotonic() - started, 1),
            "outcome": outcome}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
