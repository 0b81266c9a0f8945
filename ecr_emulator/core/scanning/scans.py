"""Scans of images: starting them (StartImageScan, scan on push), their status, their findings.

A scan row per (image, scan type) holds the latest scan; starting one sets it IN_PROGRESS and
enqueues the ``scan-image`` job in the same transaction, so a scan exists exactly when the push
or the request that started it does. Basic scanning allows one scan per image per rolling 24
hours on the emulator clock, the scan on push included. BASIC and ENHANCED results are kept
apart: switching the registry's scan type shows the other type's results, as ECR does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select

from ecr_emulator.core import errors, jobs, pagination, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.events import ImagePushed
from ecr_emulator.core.images import lookup
from ecr_emulator.core.manifests import IMAGE_MANIFESTS
from ecr_emulator.core.scanning import configuration, render
from ecr_emulator.storage.models import Image, ImageScan, ImageScanFinding, Repository

JOB_KIND = "scan-image"
QUOTA_WINDOW = 24 * 3600.0
IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
IN_PROGRESS, COMPLETE, FAILED, UNSUPPORTED, ACTIVE = "IN_PROGRESS", "COMPLETE", "FAILED", "UNSUPPORTED_IMAGE", "ACTIVE"
DESCRIPTIONS = {
    COMPLETE: "The scan was completed successfully.",
    UNSUPPORTED: "UnsupportedImageError: The operating system and/or package manager are not supported.",
    ACTIVE: "Continuous scan is selected for image.",
}
BATCH = 1000  # findings written (and earlier ones read) per statement
QUOTA_MESSAGE = "The scan quota per image has been exceeded. Wait and try again."


def is_scannable(image: Image) -> bool:
    """A container image (not an index, a schema 1 manifest or an OCI artifact)."""
    return image.media_type in IMAGE_MANIFESTS and image.artifact_media_type in IMAGE_CONFIGS


def latest(ctx: Context, image: Image, scan_type: str) -> ImageScan | None:
    return ctx.session.scalars(
        select(ImageScan).where(ImageScan.image_id == image.id, ImageScan.scan_type == scan_type)
    ).first()


def begin(ctx: Context, image: Image, scan_type: str) -> ImageScan:
    """Mark the image IN_PROGRESS and enqueue the job that scans it."""
    row = latest(ctx, image, scan_type)
    if row is None:
        row = ImageScan(image_id=image.id, scan_type=scan_type, status=IN_PROGRESS, started_at=ctx.now)
        ctx.session.add(row)
    else:
        row.status, row.description, row.started_at = IN_PROGRESS, None, ctx.now
    ctx.session.flush()
    jobs.enqueue(ctx, JOB_KIND, {"account": ctx.scope.account_id, "region": ctx.scope.region,
                                 "imageId": image.id, "scanType": scan_type, "startedAt": ctx.now})
    return row


def on_push(ctx: Context, event: ImagePushed) -> None:
    """Scan a newly pushed image (a replicated copy too: a new image in its registry) when its
    repository's effective configuration says so."""
    repo, image = event.repository, event.image
    if event.kind not in ("new", "replicated") or not is_scannable(image):
        return
    setting = configuration.effective(ctx, repo)
    if setting.scans_on_push:
        begin(ctx, image, setting.scan_type)


def start(ctx: Context, repository_name: str, image_id: dict[str, Any]) -> dict[str, Any]:
    """StartImageScan (basic scanning only; ENHANCED registries are scanned by Inspector's rules).

    The repository lock makes scans of one image started at the same moment take turns, so the
    daily quota sees each of them."""
    repo = repositories.get(ctx, repository_name, for_update=True)
    image = lookup.require(ctx, repo, image_id)
    if image.status != "ACTIVE":
        raise errors.ImageArchivedException(
            f"The image with digest '{image.digest}' is archived and cannot be scanned. Restore it first."
        )
    if configuration.scan_type(ctx) == "ENHANCED":
        raise errors.ValidationException(
            "StartImageScan is only supported for basic scanning; this registry uses enhanced scanning."
        )
    if not is_scannable(image):
        raise errors.UnsupportedImageTypeException(
            f"The image with digest '{image.digest}' and media type '{image.media_type}' is not a "
            "supported image type for scanning."
        )
    previous = latest(ctx, image, "BASIC")
    if previous is not None and previous.started_at > ctx.now - QUOTA_WINDOW:
        raise errors.LimitExceededException(QUOTA_MESSAGE)
    row = begin(ctx, image, "BASIC")
    return {"registryId": ctx.registry_id, "repositoryName": repo.name, "imageId": lookup.echo_id(image, image_id),
            "imageScanStatus": status_of(row)}


def status_of(row: ImageScan) -> dict[str, str]:
    out = {"status": row.status}
    if row.description:
        out["description"] = row.description
    return out


def summary_of(row: ImageScan) -> dict[str, Any] | None:
    if row.status not in (COMPLETE, ACTIVE) or row.completed_at is None:
        return None
    return {"imageScanCompletedAt": row.completed_at, "vulnerabilitySourceUpdatedAt": row.source_updated_at,
            "findingSeverityCounts": row.severity_counts or {}}


def on_detail(ctx: Context, repo: Repository, image: Image, out: dict[str, Any]) -> None:
    """DescribeImages' imageScanStatus and imageScanFindingsSummary (a detail extension).

    A page of image details asks for many images: the repository's scans of the current type
    are read once per request, not once per image."""
    scan_type = configuration.scan_type(ctx)
    key = ("scans", repo.id, scan_type)
    if key not in ctx.memo:
        ctx.memo[key] = {
            row.image_id: row for row in ctx.session.scalars(
                select(ImageScan).join(Image, Image.id == ImageScan.image_id)
                .where(Image.repository_id == repo.id, ImageScan.scan_type == scan_type)
            )
        }
    row = ctx.memo[key].get(image.id)
    if row is None:
        return
    out["imageScanStatus"] = status_of(row)
    summary = summary_of(row)
    if summary is not None:
        out["imageScanFindingsSummary"] = summary


def finish(ctx: Context, image_id: int, scan_type: str, started_at: float, status: str, *,
           description: str | None = None, findings: list[dict[str, Any]] | None = None,
           counts: dict[str, int] | None = None, source_updated_at: float | None = None,
           operating_system: str | None = None) -> bool:
    """Store a scan's outcome, unless a newer scan of the image started meanwhile."""
    row = ctx.session.scalars(
        select(ImageScan).where(ImageScan.image_id == image_id, ImageScan.scan_type == scan_type)
    ).first()
    if row is None or row.started_at != started_at:
        return False
    previous = ctx.session.scalars(select(ImageScanFinding.data).where(ImageScanFinding.scan_id == row.id)
                                   .execution_options(yield_per=BATCH))
    first_seen = {_key(data): data.get("firstObservedAt") for data in previous}
    ctx.session.execute(delete(ImageScanFinding).where(ImageScanFinding.scan_id == row.id))
    findings = findings or []
    for start in range(0, len(findings), BATCH):  # rows in batches: no ORM object per finding
        batch = findings[start:start + BATCH]
        for finding in batch:
            finding["firstObservedAt"] = first_seen.get(_key(finding)) or ctx.now
        ctx.session.execute(insert(ImageScanFinding), [
            {"scan_id": row.id, "position": start + i, "data": finding} for i, finding in enumerate(batch)])
    row.status, row.description = status, description or DESCRIPTIONS.get(status)
    row.completed_at = ctx.now
    row.source_updated_at, row.severity_counts, row.operating_system = source_updated_at, counts, operating_system
    ctx.session.flush()
    return True


def _key(finding: dict[str, Any]) -> tuple[str, ...]:
    pkg = finding["package"]
    return finding["advisoryId"], pkg["name"], pkg["version"], pkg["path"]


def describe_findings(ctx: Context, repository_name: str, image_id: dict[str, Any], next_token: str | None,
                      max_results: int | None) -> dict[str, Any]:
    """DescribeImageScanFindings: status and summary on every page, findings paged."""
    repo = repositories.get(ctx, repository_name)
    image = lookup.require(ctx, repo, image_id)
    scan_type = configuration.scan_type(ctx)
    row = latest(ctx, image, scan_type)
    if row is None:
        raise errors.ScanNotFoundException(image_id, repo.name, ctx.registry_id)
    out: dict[str, Any] = {"registryId": ctx.registry_id, "repositoryName": repo.name,
                           "imageId": lookup.echo_id(image, image_id), "imageScanStatus": status_of(row)}
    summary = summary_of(row)
    if summary is None:
        return out
    stmt = select(ImageScanFinding).where(ImageScanFinding.scan_id == row.id)
    page, token = pagination.page_by_keys(
        ctx, stmt, [ImageScanFinding.position], next_token, max_results, "DescribeImageScanFindings",
        lambda f: [f.position],
    )
    if scan_type == "ENHANCED":
        tags = [t.tag for t in image.tags]
        summary["enhancedFindings"] = [
            render.enhanced(ctx.scope, repo, image, f.data, row.completed_at or ctx.now, tags) for f in page
        ]
    else:
        summary["findings"] = [render.basic(f.data) for f in page]
    out["imageScanFindings"] = summary
    out["nextToken"] = token
    return out
