"""OCI 1.1 referrers: the manifests whose ``subject`` is a given digest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ecr_emulator.core import pagination, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.images import lookup
from ecr_emulator.storage.models import Image, Repository


def descriptors(
    ctx: Context,
    repo: Repository,
    subject_digest: str,
    artifact_types: list[str] | None = None,
    statuses: tuple[str, ...] = ("ACTIVE",),
    with_status: bool = False,
) -> list[dict[str, Any]]:
    """OCI descriptors of the referrers of ``subject_digest``, as the referrers API lists them."""
    stmt = (
        select(Image)
        .where(Image.repository_id == repo.id, Image.subject_digest == subject_digest, Image.status.in_(statuses))
        .order_by(Image.id)
    )
    if artifact_types:
        stmt = stmt.where(Image.artifact_type.in_(artifact_types))
    out = []
    for image in ctx.session.scalars(stmt):
        d: dict[str, Any] = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
        if with_status:
            d["artifactStatus"] = image.status
        if image.artifact_type:
            d["artifactType"] = image.artifact_type
        if image.annotations:
            d["annotations"] = image.annotations
        out.append(d)
    return out


def list_referrers(
    ctx: Context,
    repository_name: str,
    subject_digest: str,
    filt: dict[str, Any] | None,
    next_token: str | None,
    max_results: int | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """ListImageReferrers: the same descriptors, with the API's status filter and pagination."""
    repo = repositories.get(ctx, repository_name)
    filt = filt or {}
    statuses = lookup.STATUS_FILTERS[filt.get("artifactStatus", "ACTIVE")]
    found = descriptors(ctx, repo, subject_digest, filt.get("artifactTypes") or None, statuses, with_status=True)
    return pagination.page_list(found, next_token, max_results or 50, "ListImageReferrers")
