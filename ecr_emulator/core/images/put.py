"""Storing a manifest: PutImage and the registry's manifest PUT run exactly this code.

The rules (ECR-BEHAVIOUR section 4.3 and 9): the digest is the sha256 of the exact bytes;
every referenced blob must be in the repository (LayersNotFound) and every child of an index
must be an image of the repository (ReferencedImagesNotFound); a moved tag leaves the old
image untagged; adding a tag to an existing manifest is a retag that keeps ``imagePushedAt``;
immutable tags are refused even for the identical digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select

from ecr_emulator.core import errors, layers, manifests, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.events import ImagePushed
from ecr_emulator.core.images import lookup, storage_class
from ecr_emulator.storage.models import (
    Image,
    ImageBlob,
    ImageChild,
    ImageTag,
    Repository,
)
from ecr_emulator.storage.prepared import Prepared
from ecr_emulator.storage.sql import insert_ignore, insert_loaded, insert_rows

MAX_IMAGES_PER_REPOSITORY = 100_000
MAX_TAGS_PER_IMAGE = 1000

# Whether the manifest is stored (one lookup in the (repository, digest) index), and how many
# images the repository holds (its image_count, which triggers keep: counting the images made a
# push slower the more the repository held). Statements are built once (see core/repositories.py).
_STORED_AND_COUNT = Prepared(select(
    select(Image.id).where(Image.repository_id == bindparam("repository"), Image.digest == bindparam("digest"))
    .scalar_subquery(),
    select(Repository.image_count).where(Repository.id == bindparam("repository")).scalar_subquery()))
_TAGGED = Prepared(select(ImageTag.image_id).where(ImageTag.repository_id == bindparam("repository"),
                                                   ImageTag.tag == bindparam("tag")))
_TAGS_OF_IMAGE = Prepared(select(func.count()).select_from(ImageTag).where(ImageTag.image_id == bindparam("image")))
_CHILD_SIZES = Prepared(select(Image.digest, Image.size).where(
    Image.repository_id == bindparam("repository"), Image.digest.in_(bindparam("digests", expanding=True))))


@dataclass
class PutResult:
    repository: Repository
    image: Image
    manifest: manifests.Manifest
    tag: str | None


def put_image(
    ctx: Context,
    repository_name: str,
    raw: bytes,
    media_type: str | None = None,
    tag: str | None = None,
    digest: str | None = None,
    *,
    idempotent: bool = False,
    replicated: bool = False,
) -> PutResult:
    """Store ``raw`` (and tag it). ``idempotent`` is the registry's re-push behaviour: the same
    manifest with the same tag succeeds instead of raising ImageAlreadyExists. ``replicated``
    marks a copy made by replication (idempotent; its push event says so, so it is not
    replicated on)."""
    idempotent = idempotent or replicated
    repo = repositories.get(ctx, repository_name, for_update=True)
    if tag is not None:
        lookup.check_tag(tag)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.InvalidParameterException.constraint("ImageManifest", "Invalid JSON syntax") from exc
    manifest = manifests.parse(raw, media_type)
    if digest is not None and digest != manifest.digest:
        raise errors.ImageDigestDoesNotMatchException(digest, manifest.digest)

    stored_id, count = _STORED_AND_COUNT.one(ctx.session, {"repository": repo.id, "digest": manifest.digest})
    existing = lookup.by_digest(ctx, repo, manifest.digest) if stored_id is not None else None
    if existing is not None:
        restored = existing.status != "ACTIVE"
        if restored:  # pushing an archived image again restores it (ECR 14.1)
            storage_class.reactivate_now(ctx, existing)
            idempotent = True
        tagged = _retag(ctx, repo, existing, tag, idempotent)
        if restored or tagged:
            kind = "replicated" if replicated else "restore" if restored else "retag"
            publish(ctx, ImagePushed(repo, existing, kind, tag))
        return PutResult(repo, existing, manifest, tag)

    image = _store_new(ctx, repo, manifest, count)
    if tag is not None and not insert_ignore(ctx.session, ImageTag, _tag_row(ctx, repo, image, tag)):
        # the tag is on another image: moved, if the repository allows it
        _point_tag(ctx, repo, image, tag, _tagged(ctx, repo, tag), new_image=True)
    publish(ctx, ImagePushed(repo, image, "replicated" if replicated else "new", tag))
    return PutResult(repo, image, manifest, tag)


def publish(ctx: Context, event: ImagePushed) -> None:
    ctx.services.events.publish(ctx, event)


def _retag(ctx: Context, repo: Repository, image: Image, tag: str | None, idempotent: bool) -> bool:
    """Put ``tag`` on a stored image; True if the tag moved (False: nothing to do)."""
    if tag is None:
        if idempotent:
            return False
        raise errors.ImageAlreadyExistsException(image.digest, None, repo.name, ctx.registry_id)
    current = _tagged(ctx, repo, tag)
    if current == image.id:
        if repositories.is_tag_immutable(repo, tag):
            raise errors.ImageTagAlreadyExistsException(tag, repo.name, ctx.registry_id)
        if idempotent:
            return False
        raise errors.ImageAlreadyExistsException(image.digest, tag, repo.name, ctx.registry_id)
    _point_tag(ctx, repo, image, tag, current)
    return True


def _tagged(ctx: Context, repo: Repository, tag: str) -> int | None:
    """The id of the image ``tag`` is on, if any."""
    return _TAGGED.scalar(ctx.session, {"repository": repo.id, "tag": tag})  # type: ignore[no-any-return]


def _point_tag(ctx: Context, repo: Repository, image: Image, tag: str, current: int | None, *,
               new_image: bool = False) -> None:
    """Put ``tag`` on ``image``, moving it off the image it is on (``current``) if the repository allows it."""
    if current is not None:
        if repositories.is_tag_immutable(repo, tag):
            raise errors.ImageTagAlreadyExistsException(tag, repo.name, ctx.registry_id)
        # The previous image keeps its other tags, or stays as an untagged image.
        ctx.session.delete(lookup.tag_row(ctx, repo, tag))
        ctx.session.flush()
    count = 0 if new_image else _TAGS_OF_IMAGE.scalar(ctx.session, {"image": image.id})
    if count >= MAX_TAGS_PER_IMAGE:
        raise errors.LimitExceededException(
            f"The image with digest '{image.digest}' already has the maximum of {MAX_TAGS_PER_IMAGE} tags."
        )
    insert_rows(ctx.session, ImageTag, [_tag_row(ctx, repo, image, tag)])
    ctx.session.expire(image, ["tags"])


def _tag_row(ctx: Context, repo: Repository, image: Image, tag: str) -> dict[str, Any]:
    return {"repository_id": repo.id, "tag": tag, "image_id": image.id, "tagged_at": ctx.now}


def _store_new(ctx: Context, repo: Repository, manifest: manifests.Manifest, count: int) -> Image:
    """Insert the image and the blobs or children it references (plain INSERTs: a push's hot path)."""
    if count >= MAX_IMAGES_PER_REPOSITORY:
        raise errors.LimitExceededException(
            f"The repository with name '{repo.name}' already holds the maximum of "
            f"{MAX_IMAGES_PER_REPOSITORY} images."
        )
    sizes = _check_blobs(ctx, repo, manifest)
    size = manifest.declared_size
    if manifest.is_index:
        size = _check_children(ctx, repo, manifest)
    elif manifest.media_type in manifests.SCHEMA1:
        size = sum(sizes.get(d.digest, 0) for d in manifest.layers)

    image = insert_loaded(ctx.session, Image, {
        "repository_id": repo.id,
        "digest": manifest.digest,
        "manifest": manifest.raw,
        "media_type": manifest.media_type,
        "artifact_media_type": manifest.artifact_media_type,
        "artifact_type": manifest.referrer_artifact_type,
        "subject_digest": manifest.subject.digest if manifest.subject else None,
        "annotations": manifest.annotations,
        "size": size,
        "pushed_at": ctx.now,
        "last_pulled_at": None,
        "status": "ACTIVE",
        "last_archived_at": None,
        "last_activated_at": None,
    })
    blobs = []
    if manifest.config is not None:
        blobs.append({"image_id": image.id, "position": 0, "digest": manifest.config.digest,
                      "size": manifest.config.size, "media_type": manifest.config.media_type, "kind": "config"})
    for layer in manifest.layers:
        blobs.append({"image_id": image.id, "position": len(blobs), "digest": layer.digest,
                      "size": layer.size or sizes.get(layer.digest, 0), "media_type": layer.media_type,
                      "kind": "layer"})
    insert_rows(ctx.session, ImageBlob, blobs)
    insert_rows(ctx.session, ImageChild, [{"image_id": image.id, "position": i, "child_digest": child.digest}
                                          for i, child in enumerate(manifest.children)])
    return image


def _check_blobs(ctx: Context, repo: Repository, manifest: manifests.Manifest) -> dict[str, int]:
    """Every referenced blob must be in this repository. Returns the stored sizes."""
    sizes = layers.linked_sizes(ctx, repo, {d.digest for d in manifest.required_blobs})
    missing = [d.digest for d in manifest.required_blobs if d.digest not in sizes]
    if missing and not ctx.settings.allow_missing_layers:  # the switch for moto-style tests, off by default
        raise errors.LayersNotFoundException(
            f"Layers with digests '{sorted(set(missing))}' required for pushing image into repository with "
            f"name '{repo.name}' in the registry with id '{ctx.registry_id}' do not exist",
        )
    return sizes


def _check_children(ctx: Context, repo: Repository, manifest: manifests.Manifest) -> int:
    """Children of an index must be images of this repository; the index's size is the largest."""
    wanted = {c.digest for c in manifest.children}
    if not wanted:
        return 0
    rows = _CHILD_SIZES.all(ctx.session, {"repository": repo.id, "digests": list(wanted)})
    sizes = {d: s for d, s in rows}
    missing = [c.digest for c in manifest.children if c.digest not in sizes]
    if missing:
        raise errors.ReferencedImagesNotFoundException(sorted(set(missing)))
    return max(sizes.values())
