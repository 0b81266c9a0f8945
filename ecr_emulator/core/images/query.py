"""Reading images: DescribeImages, ListImages, BatchGetImage, and pull bookkeeping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, exists, func, literal, select
from sqlalchemy.orm import selectinload

from ecr_emulator.core import errors, pagination, readthrough, repositories
from ecr_emulator.core.context import Context, OutsideWork
from ecr_emulator.core.images import conversion, lookup, pulls
from ecr_emulator.core.readthrough import Miss
from ecr_emulator.storage.models import Image, ImageTag, PullThroughTag, Repository
from ecr_emulator.storage.prepared import Prepared


def image_detail(ctx: Context, repo: Repository, image: Image) -> dict[str, Any]:
    """The ECR ``ImageDetail`` structure (absent members are simply left out)."""
    out: dict[str, Any] = {
        "registryId": repo.account_id,
        "repositoryName": repo.name,
        "imageDigest": image.digest,
        "imageSizeInBytes": image.size,
        "imagePushedAt": image.pushed_at,
        "imageManifestMediaType": image.media_type,
        "imageStatus": image.status,
    }
    tags = [t.tag for t in image.tags]
    if tags:
        out["imageTags"] = tags
    if image.artifact_media_type:
        out["artifactMediaType"] = image.artifact_media_type
    if image.last_pulled_at is not None:
        out["lastRecordedPullTime"] = image.last_pulled_at
    if image.subject_digest:
        out["subjectManifestDigest"] = image.subject_digest
    if image.last_archived_at is not None:
        out["lastArchivedAt"] = image.last_archived_at
    if image.last_activated_at is not None:
        out["lastActivatedAt"] = image.last_activated_at
    for extend in ctx.services.events.detail_extensions:
        extend(ctx, repo, image, out)
    return out


def _status_values(filt: dict[str, Any] | None) -> tuple[str, ...]:
    return lookup.STATUS_FILTERS[(filt or {}).get("imageStatus", "ACTIVE")]


def _tag_condition(filt: dict[str, Any] | None):  # type: ignore[no-untyped-def]
    status = (filt or {}).get("tagStatus", "ANY")
    has_tag = exists().where(ImageTag.image_id == Image.id)
    if status == "TAGGED":
        return has_tag
    if status == "UNTAGGED":
        return ~has_tag
    return None


def describe(
    ctx: Context,
    repository_name: str,
    image_ids: list[dict[str, Any]] | None,
    filt: dict[str, Any] | None,
    next_token: str | None,
    max_results: int | None,
) -> tuple[list[dict[str, Any]], str | None]:
    repo = repositories.get(ctx, repository_name)
    if image_ids:
        if next_token is not None or max_results is not None:
            raise errors.InvalidParameterException(
                "Invalid parameter: maxResults and nextToken cannot be specified with imageIds"
            )
        found: dict[int, Image] = {}
        for image_id in image_ids:
            image = lookup.require(ctx, repo, image_id, where="imageIds")
            found.setdefault(image.id, image)
        return [image_detail(ctx, repo, i) for i in found.values()], None

    stmt = (
        select(Image)
        .where(Image.repository_id == repo.id, Image.status.in_(_status_values(filt)))
        .options(selectinload(Image.tags))
    )
    cond = _tag_condition(filt)
    if cond is not None:
        stmt = stmt.where(cond)
    images, token = pagination.page_by_id(ctx, stmt, Image.id, next_token, max_results, "DescribeImages")
    return [image_detail(ctx, repo, i) for i in images], token


def list_ids(
    ctx: Context,
    repository_name: str,
    filt: dict[str, Any] | None,
    next_token: str | None,
    max_results: int | None,
) -> tuple[list[dict[str, str]], str | None]:
    """One entry per (digest, tag) pair, plus one digest-only entry per untagged image."""
    repo = repositories.get(ctx, repository_name)
    status = (filt or {}).get("tagStatus", "ANY")
    stmt = (
        select(Image.id, Image.digest, ImageTag.tag)
        .outerjoin(ImageTag, ImageTag.image_id == Image.id)
        .where(Image.repository_id == repo.id, Image.status.in_(_status_values(filt)))
    )
    if status == "TAGGED":
        stmt = stmt.where(ImageTag.tag.is_not(None))
    elif status == "UNTAGGED":
        stmt = stmt.where(ImageTag.tag.is_(None))
    # The tag column is NULL for untagged images; coalesce so keyset comparison works.
    tag_key = func.coalesce(ImageTag.tag, "")
    rows, token = pagination.page_by_keys(
        ctx, stmt, [Image.id, tag_key], next_token, max_results, "ListImages",
        lambda row: [row.id, row.tag or ""], scalars=False,
    )
    out = []
    for row in rows:
        entry = {"imageDigest": row.digest}
        if row.tag is not None:
            entry["imageTag"] = row.tag
        out.append(entry)
    return out, token


def tag_page(ctx: Context, repository_name: str, n: int, last: str | None) -> tuple[list[str], bool]:
    """The registry's tag list: up to ``n`` tags of active images after ``last``, in order, and
    whether more follow. A pull through cache lists what it holds, as ECR does."""
    repo = repositories.get(ctx, repository_name)
    stmt = (select(ImageTag.tag).join(Image, Image.id == ImageTag.image_id)
            .where(ImageTag.repository_id == repo.id, Image.status == "ACTIVE"))
    return pagination.page_after(ctx, stmt, ImageTag.tag, n, last)


@dataclass(frozen=True)
class Pulled:
    """What a pull needs of one manifest."""

    image_id: int
    digest: str
    media_type: str
    manifest: bytes
    status: str
    last_pulled_at: float | None
    check_after: float | None = None  # a tag a pull through cache stored: when to ask upstream again


# The registry's hottest path (a manifest GET) in one statement per reference kind: repository,
# tag and image are found together, and "no row" vs "no image" tells NAME_UNKNOWN from
# MANIFEST_UNKNOWN. Outer joins keep the repository row when the image is missing; a tag that a
# pull through cache stored brings the time it is due a check against upstream.
_PULL_COLUMNS = (Repository.id, Image.id, Image.digest, Image.media_type, Image.manifest, Image.status,
                 Image.last_pulled_at)
_SCOPE = (Repository.account_id == bindparam("account"), Repository.region == bindparam("region"),
          Repository.name == bindparam("name"))
_PULL_BY_TAG = Prepared(
    select(*_PULL_COLUMNS, PullThroughTag.next_check_at)
    .select_from(Repository)
    .outerjoin(ImageTag, (ImageTag.repository_id == Repository.id) & (ImageTag.tag == bindparam("ref")))
    .outerjoin(Image, Image.id == ImageTag.image_id)
    .outerjoin(PullThroughTag, (PullThroughTag.repository_id == Repository.id) & (PullThroughTag.tag == ImageTag.tag))
    .where(*_SCOPE)
)
_PULL_BY_DIGEST = Prepared(
    select(*_PULL_COLUMNS, literal(None))
    .select_from(Repository)
    .outerjoin(Image, (Image.repository_id == Repository.id) & (Image.digest == bindparam("ref")))
    .where(*_SCOPE)
)


def for_pull(ctx: Context, repository_name: str, reference: str, by_digest: bool) -> Pulled | None:
    """The manifest a pull names, or None; RepositoryNotFoundException if the repository is missing.

    The one manifest read of both planes (registry GET/HEAD, BatchGetImage): a miss, or a cached
    tag due a check upstream, is offered to the read-through handlers first (``core/readthrough.py``)."""
    stmt = _PULL_BY_DIGEST if by_digest else _PULL_BY_TAG
    row = stmt.first(ctx.session, {
        "account": ctx.scope.account_id, "region": ctx.scope.region, "name": repository_name, "ref": reference,
    })
    if row is None:
        readthrough.offer(ctx, Miss("manifest", repository_name, reference, repository_exists=False))
        raise errors.RepositoryNotFoundException(repository_name, ctx.registry_id)
    if row[1] is None:
        readthrough.offer(ctx, Miss("manifest", repository_name, reference, repository_exists=True))
        return None
    if row[7] is not None and ctx.now >= row[7]:
        readthrough.offer(ctx, Miss("manifest", repository_name, reference, repository_exists=True, stale=True))
    return Pulled(row[1], row[2], row[3], row[4], row[5], row[6], row[7])


def batch_get(
    ctx: Context,
    repository_name: str,
    image_ids: list[dict[str, Any]],
    accepted: list[str] | None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[tuple[int, str]]]:
    """Returns (images, failures, (id, digest) of pulled images whose pull time is due a refresh). Each
    image is read as a registry pull reads it (``for_pull``); images a pull through cache must
    fetch first are fetched together before the call runs again."""
    images, failures, pulled = [], [], []
    outside: list[OutsideWork] = []
    looked_up = False
    for image_id in image_ids:
        problem = lookup.malformed(image_id)
        if problem is not None:
            failures.append(lookup.failure(image_id, *problem))
            continue
        digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
        looked_up = True
        try:
            image = for_pull(ctx, repository_name, tag if tag is not None else digest, by_digest=tag is None)
        except OutsideWork as work:
            outside.append(work)
            continue
        except errors.UpstreamImageFailure as exc:
            failures.append(lookup.failure(image_id, exc.failure_code, exc.message))
            continue
        if image is None or image.status != "ACTIVE":
            failures.append(lookup.failure(image_id, "ImageNotFound", "Requested image not found"))
            continue
        if tag is not None and digest is not None and image.digest != digest:
            failures.append(lookup.failure(image_id, "ImageTagDoesNotMatchDigest",
                                           "Invalid request parameters: image tag does not match digest"))
            continue
        converted = conversion.for_accepted(image.manifest, image.media_type, accepted, image.digest)
        if converted is None:
            failures.append(
                lookup.failure(
                    image_id, "ImageNotFound", "Requested image not found in any of the accepted media types"
                )
            )
            continue
        raw, media_type, digest = converted
        images.append(
            {
                "registryId": ctx.registry_id,
                "repositoryName": repository_name,
                "imageId": {**lookup.echo_id(image, image_id), "imageDigest": digest},
                "imageManifest": raw.decode("utf-8"),
                "imageManifestMediaType": media_type,
            }
        )
        if pulls.due(image.last_pulled_at, ctx.now):
            pulled.append((image.image_id, image.digest))
    if outside:
        raise OutsideWork.together(outside)
    if not looked_up:
        repositories.get(ctx, repository_name)  # RepositoryNotFoundException, as for any other call
    return images, failures, pulled
