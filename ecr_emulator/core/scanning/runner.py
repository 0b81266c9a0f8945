"""The ``scan-image`` job: open the pushed image, inventory it, match it, store the outcome.

The job reads what it needs in a short read transaction, does the slow part (streaming layers
from the blob store, matching) with no transaction open, and writes the outcome in a short write
transaction. Anything wrong with the image ends the scan as FAILED with the reason; an image with
nothing recognisable ends as UNSUPPORTED_IMAGE; the job itself never crashes the worker.

Continuous scanning (ENHANCED) is a periodic task: images whose findings were computed against an
older vulnerability database than the current one are scanned again after each import.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy import select

from ecr_emulator.core import jobs, settings_store
from ecr_emulator.core.context import Services
from ecr_emulator.core.manifests import FOREIGN_LAYERS
from ecr_emulator.core.naming import Scope
from ecr_emulator.core.scanning import configuration, scans
from ecr_emulator.core.vulndb import store
from ecr_emulator.storage.models import Image, ImageScan, RegistrySetting, Repository

log = logging.getLogger(__name__)
CONTINUOUS_INTERVAL = 3600.0
MAX_CONFIG_BYTES = 1024 * 1024


def _platform(services: Services, config_digest: str | None) -> dict[str, str | None]:
    """Architecture from the image config (Inspector reports it with each enhanced finding)."""
    if config_digest is None:
        return {"architecture": None}
    try:
        with services.blobs.open(config_digest) as fh:
            doc = json.loads(fh.read(MAX_CONFIG_BYTES))
        arch = doc.get("architecture") if isinstance(doc, dict) else None
        return {"architecture": arch if isinstance(arch, str) else None}
    except (OSError, ValueError):
        return {"architecture": None}


def scan(services: Services, scope: Scope, image_id: int) -> dict[str, Any]:
    """Scan one image now. Returns the outcome as keyword arguments for ``scans.finish``."""
    # the layer reader, package parsers and matcher load on the first scan, not at start-up
    from ecr_emulator.core.scanning import inventory, layers, matching  # loaded on first use (start-up time)
    from ecr_emulator.core.scanning.limits import ScanError

    with services.unit(scope) as ctx:
        image = ctx.session.get(Image, image_id)
        if image is None:
            return {}
        blobs = [(b.digest, b.media_type, b.kind) for b in image.blobs]
    layer_digests = [d for d, media_type, kind in blobs if kind == "layer" and media_type not in FOREIGN_LAYERS]
    config_digest = next((d for d, _, kind in blobs if kind == "config"), None)
    try:
        found = inventory.take(layers.apply_layers(  # the filesystem is dropped once inventoried
            [(d, lambda d=d: services.blobs.open(d)) for d in layer_digests],
            services.settings.scan_max_unpacked_bytes,
        ))
        os_supported = found.os is not None and found.os.supported
        if not os_supported and not any(p.kind in matching.LANGUAGE_ECOSYSTEMS for p in found.packages):
            return {"status": scans.UNSUPPORTED}
        with services.unit(scope) as ctx:
            findings = matching.find(ctx.session, found)
            updated = store.source_updated_at(ctx.session)
    except ScanError as exc:
        return {"status": scans.FAILED, "description": f"ScanFailed: {exc}"}
    extra = _platform(services, config_digest)
    extra["platform"] = found.os.platform if found.os is not None else None
    for finding in findings:
        finding.update(extra)
    return {"status": scans.COMPLETE, "findings": findings, "counts": matching.severity_counts(findings),
            "source_updated_at": updated, "operating_system": found.os.pretty_name if found.os else None}


@jobs.handler(scans.JOB_KIND)
def run_scan_job(services: Services, payload: dict[str, Any]) -> None:
    scope = Scope(payload["account"], payload["region"])
    try:
        outcome = scan(services, scope, payload["imageId"])
    except Exception:  # a scan must end; the worker and the waiter must not hang on it
        log.exception("scan of image %s failed unexpectedly", payload["imageId"])
        outcome = {"status": scans.FAILED, "description": "ScanFailed: internal error while scanning the image"}
    if not outcome:
        return
    with services.unit(scope, write=True) as ctx:
        if outcome["status"] == scans.COMPLETE and payload["scanType"] == "ENHANCED":
            image = ctx.session.get(Image, payload["imageId"])
            repo = ctx.session.get(Repository, image.repository_id) if image else None
            if repo is not None and configuration.effective(ctx, repo).frequency == "CONTINUOUS_SCAN":
                outcome["status"] = scans.ACTIVE
        scans.finish(ctx, payload["imageId"], payload["scanType"], payload["startedAt"], **outcome)


@jobs.handler("scan-continuous")
def rescan_stale(services: Services, payload: dict[str, Any]) -> None:
    """Rescan continuously scanned images whose findings predate the current vulnerability data."""
    current = services.db.run(store.source_updated_at)
    if current is None:
        return
    scopes = services.db.run(lambda s: [
        Scope(r.account_id, r.region) for r in s.scalars(
            select(RegistrySetting).where(RegistrySetting.name == configuration.SETTING))
        if isinstance(r.value, dict) and r.value.get("scanType") == "ENHANCED"
    ])
    for scope in scopes:
        with services.unit(scope, write=True) as ctx:
            config = settings_store.get(ctx, configuration.SETTING)
            stale = ctx.session.execute(
                select(ImageScan, Image, Repository)
                .join(Image, Image.id == ImageScan.image_id)
                .join(Repository, Repository.id == Image.repository_id)
                .where(Repository.account_id == scope.account_id, Repository.region == scope.region,
                       ImageScan.scan_type == "ENHANCED", ImageScan.status == scans.ACTIVE,
                       (ImageScan.source_updated_at.is_(None)) | (ImageScan.source_updated_at < current))
            ).all()
            for row, image, repo in stale:
                if configuration.effective(ctx, repo, config).frequency == "CONTINUOUS_SCAN":
                    row.started_at = ctx.now
                    jobs.enqueue(ctx, scans.JOB_KIND, {"account": scope.account_id, "region": scope.region,
                                                       "imageId": image.id, "scanType": "ENHANCED",
                                                       "startedAt": ctx.now})


jobs.periodic("scan-continuous", "scan-continuous", lambda services: CONTINUOUS_INTERVAL)
