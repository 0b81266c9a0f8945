"""The evaluator's view of a repository: one consistent read of its images."""

from __future__ import annotations

from sqlalchemy import select

from ecr_emulator.core.context import Context
from ecr_emulator.core.lifecycle.evaluate import ImageFacts
from ecr_emulator.storage.models import Image, ImageChild, ImageTag, Repository


def image_facts(ctx: Context, repo: Repository) -> list[ImageFacts]:
    tags: dict[int, list[str]] = {}
    for image_id, tag in ctx.session.execute(
        select(ImageTag.image_id, ImageTag.tag).where(ImageTag.repository_id == repo.id).order_by(ImageTag.tagged_at)
    ):
        tags.setdefault(image_id, []).append(tag)
    protected = set(
        ctx.session.scalars(
            select(ImageChild.child_digest)
            .join(Image, Image.id == ImageChild.image_id)
            .where(Image.repository_id == repo.id)
        )
    )
    rows = ctx.session.execute(
        select(Image.id, Image.digest, Image.pushed_at, Image.status, Image.last_pulled_at,
               Image.last_archived_at, Image.last_activated_at, Image.subject_digest)
        .where(Image.repository_id == repo.id)
    )
    return [
        ImageFacts(
            id=r.id,
            digest=r.digest,
            tags=tuple(tags.get(r.id, ())),
            pushed_at=r.pushed_at,
            status=r.status,
            last_pulled_at=r.last_pulled_at,
            last_archived_at=r.last_archived_at,
            last_activated_at=r.last_activated_at,
            protected=r.digest in protected,
            subject=r.subject_digest,
        )
        for r in rows
    ]
