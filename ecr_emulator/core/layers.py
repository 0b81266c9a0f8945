"""What a repository holds at blob level: availability checks, download URLs, blob reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import bindparam, func, select

from ecr_emulator.core import errors, readthrough, repositories
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import DIGEST
from ecr_emulator.core.readthrough import Miss
from ecr_emulator.storage.models import Blob, Image, ImageBlob, Repository, RepositoryBlob
from ecr_emulator.storage.prepared import Prepared

DOWNLOAD_URL_TTL = 3600  # ECR's pre-signed S3 URLs live about an hour

# Built once (see core/repositories.py): every push and availability check runs them.
# The digests are matched on repository_blobs, whose key is (repository, digest): PostgreSQL then
# looks each one up by key whatever its statistics say. Matched on blobs alone, a planner that has
# not analysed the tables yet walked every blob of the repository (5 ms a PutImage at 900 blobs).
def _linked(*more: Any) -> Any:
    return (select(Blob.digest, Blob.size, *more)
            .join(RepositoryBlob, RepositoryBlob.digest == Blob.digest)
            .where(RepositoryBlob.repository_id == bindparam("repository"),
                   RepositoryBlob.digest.in_(bindparam("digests", expanding=True))))


def _first_reference(digest: Any, active: bool) -> Any:
    """The declared media type ('' for none) of the first image of the repository found naming
    blob ``digest`` (a parameter, or the column of an enclosing query), an active image if
    ``active``; NULL if there is none."""
    found = (select(func.coalesce(ImageBlob.media_type, ""))
             .join(Image, Image.id == ImageBlob.image_id)
             .where(ImageBlob.digest == digest, Image.repository_id == bindparam("repository")))
    return (found.where(Image.status == "ACTIVE") if active else found).limit(1).scalar_subquery()


# Whether images of the repository name a blob, and whether an active one does: each stops at the
# first image found. Reading every referencing image (even grouped by status) made each blob HEAD,
# blob GET and availability check grow with the repository's history, since every build of an
# image names the same base layers: a BatchCheckLayerAvailability read 750 rows at 750 images.
# Reads of blobs (availability, pulls) ask it together with the link; a push needs the link alone.
_LINKED = Prepared(_linked())
_LINKED_REFERENCED = Prepared(_linked(_first_reference(Blob.digest, active=True),
                                      _first_reference(Blob.digest, active=False)))
_REFERENCES = Prepared(select(_first_reference(bindparam("digest"), active=True),
                              _first_reference(bindparam("digest"), active=False)))


def linked_sizes(ctx: Context, repo: Repository, digests: list[str] | set[str]) -> dict[str, int]:
    """digest -> size of the blobs among ``digests`` that are in ``repo`` (uploaded or mounted).

    A blob whose bytes are gone from the store or cut short (a data directory tampered with, a
    power loss before the kernel wrote them out: see ``storage/fsstore.py``) counts as missing
    here, and so everywhere: availability checks, pushes that need it, pulls, mounts. A client
    then uploads it again, which puts the bytes back."""
    if not digests:
        return {}
    rows = _LINKED.all(ctx.session, {"repository": repo.id, "digests": list(digests)})
    return {digest: size for digest, size in rows if ctx.blobs.stat(digest) == size}


@dataclass(frozen=True)
class References:
    """How the images of a repository name one blob."""

    referenced: bool = False  # some image names it
    active: bool = False  # an active (not archived) image names it
    media_type: str | None = None  # as an image declared it (an active one's, where one did)


def _references(active: str | None, any_image: str | None) -> References:
    """From the two ``_first_reference`` answers."""
    if any_image is None:
        return References()
    return References(True, active is not None, active or any_image or None)


def _linked_references(ctx: Context, repo: Repository, digests: list[str]) -> dict[str, tuple[int | None, References]]:
    """digest -> (size, references) of the blobs among ``digests`` linked to ``repo``; the size is
    None where the bytes are missing or cut short (see ``linked_sizes``)."""
    if not digests:
        return {}
    rows = _LINKED_REFERENCED.all(ctx.session, {"repository": repo.id, "digests": digests})
    return {digest: (size if ctx.blobs.stat(digest) == size else None, _references(active, any_image))
            for digest, size, active, any_image in rows}


def check_availability(
    ctx: Context, repository_name: str, digests: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    repo = repositories.get(ctx, repository_name)
    linked = _linked_references(ctx, repo, [d for d in digests if d and DIGEST.fullmatch(d)])
    layers, failures = [], []
    for d in digests:
        if not d:
            failures.append({"layerDigest": d, "failureCode": "MissingLayerDigest",
                             "failureReason": "The layer digest is missing"})
        elif not DIGEST.fullmatch(d):
            failures.append({"layerDigest": d, "failureCode": "InvalidLayerDigest",
                             "failureReason": "Invalid layer digest"})
        elif linked.get(d, (None,))[0] is None:
            failures.append({"layerDigest": d, "failureCode": "MissingLayerDigest",
                             "failureReason": "Could not find layer"})
        else:
            size, refs = linked[d]
            entry: dict[str, Any] = {
                "layerDigest": d,
                "layerAvailability": "ARCHIVED" if refs.referenced and not refs.active else "AVAILABLE",
                "layerSize": size,
            }
            if refs.media_type:
                entry["mediaType"] = refs.media_type
            layers.append(entry)
    return layers, failures


def _sign_text(account: str, region: str, name: str, digest: str, expires: int) -> str:
    return f"download|{account}|{region}|{name}|{digest}|{expires}"


def download_url(ctx: Context, repository_name: str, digest: str) -> str:
    """A URL on the registry listener that serves the layer without credentials for an hour,
    like the pre-signed S3 URL ECR returns. Only layers an image references qualify."""
    blob = pull_blob(ctx, repository_name, digest)
    repo = blob.repository
    if blob.referenced and not blob.active:
        raise errors.LayerInaccessibleException(
            f"The layer with digest '{digest}' belongs only to archived images in the repository with name "
            f"'{repo.name}' in the registry with id '{ctx.registry_id}'. Restore an image first."
        )
    if not blob.referenced:
        linked = ctx.session.get(RepositoryBlob, (repo.id, digest)) is not None
        if linked:
            raise errors.LayerInaccessibleException(
                f"The layer with digest '{digest}' is not referenced by any image in the repository "
                f"with name '{repo.name}' in the registry with id '{ctx.registry_id}'"
            )
        raise errors.LayersNotFoundException(
            f"The layer with digest '{digest}' does not exist in the repository with name "
            f"'{repo.name}' in the registry with id '{ctx.registry_id}'"
        )
    if ctx.settings.blob_redirect:
        direct = ctx.blobs.redirect_url(digest, DOWNLOAD_URL_TTL)
        if direct is not None:  # a presigned object-store URL, as ECR returns one of S3
            return direct
    expires = int(ctx.now) + DOWNLOAD_URL_TTL
    signature = ctx.services.tokens.sign_url(
        _sign_text(ctx.scope.account_id, ctx.scope.region, repo.name, digest, expires)
    )
    query = urlencode({"X-Amz-Expires": DOWNLOAD_URL_TTL, "X-Emulator-Expires": expires,
                       "X-Emulator-Signature": signature})
    host = ctx.hosts.proxy_endpoint(ctx.scope)
    return f"{host}/v2/{quote(repo.name)}/blobs/{digest}?{query}"


def check_download_signature(ctx: Context, name: str, digest: str, expires: str, signature: str) -> bool:
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        return False
    exp = int(expires)
    if exp < ctx.now:
        return False
    text = _sign_text(ctx.scope.account_id, ctx.scope.region, name, digest, exp)
    return ctx.services.tokens.check_url(text, signature)


@dataclass(frozen=True)
class PulledBlob:
    """What a pull needs to know of one blob in one repository."""

    repository: Repository
    size: int | None  # None: the repository does not hold the bytes
    references: References = field(default_factory=References)  # by the repository's images

    @property
    def referenced(self) -> bool:
        return self.references.referenced

    @property
    def active(self) -> bool:
        return self.references.active

    @property
    def readable(self) -> int | None:
        """The size, if the repository may serve the bytes: they are linked to it and, if images
        reference the blob, one of them is active (archived layers cannot be pulled)."""
        return self.size if self.size is not None and (self.active or not self.referenced) else None


def pull_blob(ctx: Context, repository_name: str, digest: str, *, read_through: bool = True) -> PulledBlob:
    """The one blob read of both planes (registry blob GET/HEAD, GetDownloadUrlForLayer). A blob an
    active image names but whose bytes the repository does not hold is offered to the read-through
    handlers first (``core/readthrough.py``: the pull through cache fetches it again); a HEAD,
    which pushers use to ask what to upload, passes ``read_through=False``."""
    repo = repositories.get(ctx, repository_name)
    if not DIGEST.fullmatch(digest):
        return PulledBlob(repo, None)
    linked = _linked_references(ctx, repo, [digest]).get(digest)
    size = linked[0] if linked is not None else None
    if size is None and not read_through:  # the pusher's HEAD of a blob it has yet to upload
        return PulledBlob(repo, None)
    # a blob the repository does not hold may still be named by its images (a pull through cache
    # fetches such layers when first pulled)
    refs = linked[1] if linked is not None else _references(
        *_REFERENCES.one(ctx.session, {"repository": repo.id, "digest": digest}))
    if size is None and refs.active:
        readthrough.offer(ctx, Miss("blob", repository_name, digest, repository_exists=True))
    return PulledBlob(repo, size, refs)
