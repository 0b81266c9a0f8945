"""Removing tags and images: BatchDeleteImage, the registry's manifest DELETE, and lifecycle."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ecr_emulator.core import errors, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.events import ImageDeleted, ImageUntagged, Origin
from ecr_emulator.core.images import lookup
from ecr_emulator.storage.models import Image, ImageChild, Repository


class ImageReferencedByIndex(errors.EcrError):
    """A manifest an index of the same repository still references (ECR 4.5)."""

    def __init__(self, digests: list[str]) -> None:
        super().__init__("Requested image referenced by manifest list: [" + ", ".join(digests) + "]")


def referencing_indexes(ctx: Context, repo: Repository, digest: str) -> list[str]:
    return list(
        ctx.session.scalars(
            select(Image.digest)
            .join(ImageChild, ImageChild.image_id == Image.id)
            .where(Image.repository_id == repo.id, ImageChild.child_digest == digest)
            .distinct()
        )
    )


def delete_image(
    ctx: Context, repo: Repository, image: Image, *, check_indexes: bool = True, origin: Origin = "user"
) -> list[dict[str, str]]:
    """Delete an image and all its tags. Returns the deleted ImageIdentifiers.

    ``check_indexes=False`` is for callers that already know no index references the image.
    """
    if check_indexes:
        parents = referencing_indexes(ctx, repo, image.digest)
        if parents:
            raise ImageReferencedByIndex(parents)
    removed = [{"imageDigest": image.digest, "imageTag": t.tag} for t in image.tags] or [
        {"imageDigest": image.digest}
    ]
    ctx.services.events.publish(ctx, ImageDeleted(repo, image, origin))
    ctx.session.delete(image)
    return removed


def untag(ctx: Context, repo: Repository, image: Image, tag: str, *, origin: Origin = "user") -> list[dict[str, str]]:
    """Remove one tag; the image goes with its last tag unless an index still needs it."""
    row = lookup.tag_row(ctx, repo, tag)
    if row is None or row.image_id != image.id:
        return []
    remaining = [t for t in image.tags if t.tag != tag]
    if not remaining and not referencing_indexes(ctx, repo, image.digest):
        delete_image(ctx, repo, image, origin=origin)
    else:
        ctx.session.delete(row)
        ctx.session.flush()
        ctx.session.expire(image, ["tags"])
        ctx.services.events.publish(ctx, ImageUntagged(repo, image, tag, origin))
    return [{"imageDigest": image.digest, "imageTag": tag}]


def batch_delete(
    ctx: Context, repository_name: str, image_ids: list[dict[str, Any]]
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    repo = repositories.get(ctx, repository_name, for_update=True)
    deleted: list[dict[str, str]] = []
    failures: list[dict[str, Any]] = []
    for image_id in image_ids:
        image, code, reason = lookup.resolve(ctx, repo, image_id)
        if image is None:
            failures.append(lookup.failure(image_id, code or "ImageNotFound", reason))
            continue
        try:
            if image_id.get("imageTag") is not None:
                deleted += untag(ctx, repo, image, image_id["imageTag"])
            else:
                deleted += delete_image(ctx, repo, image)
        except ImageReferencedByIndex as exc:
            failures.append(lookup.failure(image_id, "ImageReferencedByManifestList", exc.message))
    return deleted, failures
