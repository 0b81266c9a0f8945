"""OCI 1.1 referrers: the manifests whose ``subject`` is a given digest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ecr_emulator.core.context import Context
from ecr_emulator.storage.models import Image, Repository


def descriptors(
    ctx: Context,
    repo: Repository,
    subject_digest: str,
    artifact_types: list[str] | None = None,
    statuses: tuple[str, ...] = ("ACTIVE",),
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
        if image.artifact_type:
            d["artifactType"] = image.artifact_type
        if image.annotations:
            d["annotations"] = image.annotations
        out.append(d)
    return out
