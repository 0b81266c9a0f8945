"""Finding images by tag or digest, and the checks on identifiers both planes share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select

from ecr_emulator.core import errors
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import DIGEST, IMAGE_TAG, IMAGE_TAG_PATTERN_TEXT
from ecr_emulator.storage.models import Image, ImageTag, Repository

STATUS_FILTERS = {
    "ACTIVE": ("ACTIVE",),
    "ARCHIVED": ("ARCHIVED",),
    "ACTIVATING": ("ACTIVATING",),
    "ANY": ("ACTIVE", "ARCHIVED", "ACTIVATING"),
}


def check_tag(tag: str, where: str = "imageTag") -> None:
    if not IMAGE_TAG.fullmatch(tag):
        raise errors.InvalidParameterException.constraint(
            where, f"must satisfy regular expression '{IMAGE_TAG_PATTERN_TEXT}'"
        )


# Built once (see core/repositories.py): these run on every push and pull. An image's tags load
# when first read (one query, as eager loading would cost, and none where they are not read).
_BY_DIGEST = select(Image).where(Image.repository_id == bindparam("repository"), Image.digest == bindparam("digest"))
_BY_TAG = (select(Image)
           .join(ImageTag, ImageTag.image_id == Image.id)
           .where(ImageTag.repository_id == bindparam("repository"), ImageTag.tag == bindparam("tag")))
_TAG_ROW = select(ImageTag).where(ImageTag.repository_id == bindparam("repository"), ImageTag.tag == bindparam("tag"))


def by_digest(ctx: Context, repo: Repository, digest: str) -> Image | None:
    return ctx.session.scalars(_BY_DIGEST, {"repository": repo.id, "digest": digest}).first()


def by_tag(ctx: Context, repo: Repository, tag: str) -> Image | None:
    return ctx.session.scalars(_BY_TAG, {"repository": repo.id, "tag": tag}).first()


def tag_row(ctx: Context, repo: Repository, tag: str) -> ImageTag | None:
    return ctx.session.scalars(_TAG_ROW, {"repository": repo.id, "tag": tag}).first()


def malformed(image_id: dict[str, Any]) -> tuple[str, str] | None:
    """(failureCode, failureReason) of an ``ImageIdentifier`` that cannot name an image, else None."""
    digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
    if digest is None and tag is None:
        return "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null"
    if digest is not None and not DIGEST.fullmatch(digest):
        return "InvalidImageDigest", "Invalid image digest"
    if tag is not None and not IMAGE_TAG.fullmatch(tag):
        return "InvalidImageTag", "Invalid image tag"
    return None


def resolve(ctx: Context, repo: Repository, image_id: dict[str, Any]) -> tuple[Image | None, str | None, str]:
    """Look up one ``ImageIdentifier``; returns (image, failureCode, failureReason).

    The failure codes are the ones BatchGetImage and BatchDeleteImage report per item.
    """
    problem = malformed(image_id)
    if problem is not None:
        return None, *problem
    digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
    if tag is not None:
        image = by_tag(ctx, repo, tag)
        if image is None:
            return None, "ImageNotFound", "Requested image not found"
        if digest is not None and image.digest != digest:
            return None, "ImageTagDoesNotMatchDigest", "Invalid request parameters: image tag does not match digest"
        return image, None, ""
    image = by_digest(ctx, repo, digest)
    if image is None:
        return None, "ImageNotFound", "Requested image not found"
    return image, None, ""


def failure(image_id: dict[str, Any], code: str, reason: str) -> dict[str, Any]:
    return {"imageId": image_id, "failureCode": code, "failureReason": reason}


def require(ctx: Context, repo: Repository, image_id: dict[str, Any], where: str = "imageId") -> Image:
    """An image an operation needs to exist (raises, unlike the batch calls, which report)."""
    image, code, reason = resolve(ctx, repo, image_id)
    if image is not None:
        return image
    if code in ("InvalidImageDigest", "InvalidImageTag", "MissingDigestAndTag"):
        raise errors.InvalidParameterException.constraint(where, reason)
    raise errors.ImageNotFoundException(image_id, repo.name, ctx.registry_id)


def echo_id(image: Image | Any, image_id: dict[str, Any]) -> dict[str, str]:
    """The imageId an operation answers with: the digest, plus the tag if the caller named one."""
    out = {"imageDigest": image.digest}
    if image_id.get("imageTag") is not None:
        out["imageTag"] = image_id["imageTag"]
    return out
