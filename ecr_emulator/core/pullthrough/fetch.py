"""Fetching from upstream into a cache repository, with no database transaction open.

An image (a tag or a digest) is fetched under a lease on that reference (``leases``), so pulls of
one uncached image at the same moment fetch it once: the manifest (its digest verified), then, for
an index, every child manifest, then every blob not already in the repository, each under a
lease of its own. Blobs take the path an upload takes (``core/uploads.py``): streamed into
staging while hashed, verified against their digest, placed at their content address under the
blob's lock and linked to the repository, never held in memory. Blobs already in the store (another
cache repository, a push) are linked without asking upstream. Last, one transaction stores the
manifests through ``put_image`` (children first), as a push would, so the image is an ordinary
one: scanning, lifecycle and replication see it. The repository is created first when missing,
with the matching ``PULL_THROUGH_CACHE`` creation template.

A refresh (a cached tag due a check) asks upstream for the tag's manifest; the same digest only
moves the next check 24 hours on; another one is fetched and moves the tag. When the refresh
cannot reach upstream the cached image stays and the next pull tries again a minute later.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecr_emulator.core import access, errors, layers, manifests, repositories, templates, uploads
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.images import lookup
from ecr_emulator.core.images import put as image_put
from ecr_emulator.core.naming import Principal, Scope
from ecr_emulator.core.pullthrough import leases, secrets, upstream
from ecr_emulator.core.pullthrough.client import DENIED, NOT_FOUND, THROTTLED, UpstreamError
from ecr_emulator.core.pullthrough.rules import Source
from ecr_emulator.storage.models import Image, ImageBlob, PullThroughTag
from ecr_emulator.storage.sql import lock_blob

log = logging.getLogger(__name__)
Registry = upstream.RegistryClient | upstream.LocalRegistry

REFRESH_SECONDS = 24 * 3600.0  # ECR re-checks a cached tag upstream at least once per 24 hours
RETRY_SECONDS = 60.0  # after a refresh that could not reach upstream
MAX_DEPTH = 4  # indexes of indexes
PARALLEL = 4  # blobs of one image fetched at the same time


def failure(exc: UpstreamError, source: Source) -> errors.UpstreamImageFailure:
    """An upstream error as ECR reports it for an image (BatchGetImage failureCode)."""
    if exc.kind == NOT_FOUND:
        return errors.UpstreamImageFailure("ImageNotFound", "Requested image not found")
    if exc.kind == DENIED:
        return errors.UpstreamImageFailure(
            "UpstreamAccessDenied",
            f"The authentication to the upstream registry failed. Verify that the credentials of the pull through "
            f"cache rule are valid and may pull '{source.repository}' from {source.url} ({exc.message})",
        )
    if exc.kind == THROTTLED:
        return errors.UpstreamImageFailure(
            "UpstreamTooManyRequests", f"The upstream registry {source.url} refused the request: too many requests "
                                       f"({exc.message})")
    return errors.UpstreamImageFailure(
        "UpstreamUnavailable", f"The upstream registry {source.url} is unavailable ({exc.message})")


@dataclass(frozen=True)
class Wanted:
    """One blob an image needs."""

    digest: str
    size: int | None


class Fetch:
    """Fetches for one cache repository, on behalf of one caller."""

    def __init__(self, services: Services, scope: Scope, principal: Principal, repository: str,
                 source: Source) -> None:
        self.services, self.scope, self.principal = services, scope, principal
        self.repository, self.source = repository, source

    def _run(self, fn, write: bool = False):  # type: ignore[no-untyped-def]
        return self.services.run(self.scope, self.principal, fn, write=write)

    def _client(self) -> Registry:
        """A client of the upstream with the rule's credentials; the secret errors ECR names."""
        return upstream.connect(self.services, self.scope, self.source.url, self.source.credential_arn,
                                self.source.custom_role_arn)

    # ---- images

    def image(self, reference: str, stale: bool) -> None:
        """Fetch ``reference`` (or re-check a cached tag). Raises UpstreamImageFailure, or
        UnableToGetUpstreamImageException when the rule's secret cannot be used."""
        try:
            self._image(reference, stale)
        except UpstreamError as exc:
            log.info("pull through cache: %s %s from %s: %s", self.repository, reference, self.source.url,
                     exc.message)
            if stale:
                return self._checked(reference, RETRY_SECONDS)
            raise failure(exc, self.source) from None

    def _image(self, reference: str, stale: bool) -> None:
        what = f"image|{self.scope.account_id}|{self.scope.region}|{self.repository}|{reference}"
        with leases.hold(self.services.db, what, lambda: self._has(reference, stale)) as held:
            if not held or self._has(reference, stale):
                return
            try:
                client = self._client()
            except (errors.EcrError, secrets.InvalidSecret) as exc:
                if stale:
                    return self._checked(reference, RETRY_SECONDS)
                message = exc.message if isinstance(exc, errors.EcrError) else str(exc)
                raise errors.UnableToGetUpstreamImageException(message) from None
            with client:
                self._import(client, reference, stale)

    def _has(self, reference: str, stale: bool) -> bool:
        """Whether the cache holds the image now (or, for a refresh, whether someone re-checked it)."""

        def look(ctx: Context) -> bool:
            repo = repositories.find(ctx, self.repository)
            if repo is None:
                return False
            if stale:
                row = ctx.session.get(PullThroughTag, (repo.id, reference))
                return row is None or row.next_check_at > ctx.now
            image = lookup.by_digest(ctx, repo, reference) if ":" in reference else lookup.by_tag(ctx, repo, reference)
            return image is not None and image.status == "ACTIVE"

        return self._run(look)

    def _import(self, client: Registry, reference: str, stale: bool) -> None:
        raw, content_type, digest = client.manifest(self.source.repository, reference)
        if stale and digest == self._current(reference):
            return self._checked(reference, REFRESH_SECONDS)
        top = self._parse(raw, content_type, reference)
        children = self._children(client, top, 0)
        wanted: dict[str, Wanted] = {}
        for m in [*children, top]:
            for d in m.required_blobs:
                wanted.setdefault(d.digest, Wanted(d.digest, d.size if d.size else None))
        self._ensure_repository()
        self._store_blobs(client, list(wanted.values()))
        tag = None if ":" in reference else reference
        try:
            self._run(lambda ctx: self._store(ctx, children, top, tag), write=True)
        except errors.ImageTagAlreadyExistsException:
            if not stale:
                raise
            self._checked(reference, REFRESH_SECONDS)  # an immutable cached tag keeps its image

    def _parse(self, raw: bytes, content_type: str | None, reference: str) -> manifests.Manifest:
        declared = content_type if content_type in manifests.SUPPORTED else None
        try:
            return manifests.parse(raw, declared)
        except errors.InvalidParameterException as exc:
            raise UpstreamError(NOT_FOUND, f"manifest {self.source.repository} {reference} is not one ECR can "
                                           f"store: {exc.message}") from None

    def _children(self, client: Registry, index: manifests.Manifest, depth: int) -> list[manifests.Manifest]:
        """The manifests an index names that the repository lacks, each before whatever names it."""
        if not index.is_index:
            return []
        if depth >= MAX_DEPTH:
            raise UpstreamError(NOT_FOUND, f"indexes nested more than {MAX_DEPTH} deep")
        held = self._stored([c.digest for c in index.children])
        out: list[manifests.Manifest] = []
        for child in index.children:
            if child.digest in held or any(m.digest == child.digest for m in out):
                continue
            raw, content_type, _ = client.manifest(self.source.repository, child.digest)
            parsed = self._parse(raw, content_type or child.media_type, child.digest)
            out += self._children(client, parsed, depth + 1)
            out.append(parsed)
        return out

    def _stored(self, digests: list[str]) -> set[str]:
        def look(ctx: Context) -> set[str]:
            repo = repositories.find(ctx, self.repository)
            if repo is None:
                return set()
            return {d for d in digests if lookup.by_digest(ctx, repo, d) is not None}

        return self._run(look)

    def _current(self, tag: str) -> str | None:
        def look(ctx: Context) -> str | None:
            repo = repositories.find(ctx, self.repository)
            image = lookup.by_tag(ctx, repo, tag) if repo is not None else None
            return image.digest if image is not None else None

        return self._run(look)

    def _ensure_repository(self) -> None:
        """The cache repository, created as ECR creates it (template settings or defaults) if missing;
        the caller was allowed ecr:CreateRepository when the pull asked (checked again here)."""

        def ensure(ctx: Context) -> None:
            if repositories.find(ctx, self.repository, for_update=True) is not None:
                return
            if not access.permits(ctx, access.Need("ecr:CreateRepository", self.repository)):
                raise errors.RepositoryNotFoundException(self.repository, ctx.registry_id)
            templates.create_repository(ctx, self.repository, "PULL_THROUGH_CACHE")

        self._run(ensure, write=True)

    def _store(self, ctx: Context, children: list[manifests.Manifest], top: manifests.Manifest,
               tag: str | None) -> None:
        for child in children:
            image_put.put_image(ctx, self.repository, child.raw, child.media_type, idempotent=True)
        result = image_put.put_image(ctx, self.repository, top.raw, top.media_type, tag=tag, idempotent=True)
        if tag is not None:
            _set_check(ctx.session, result.repository.id, tag, ctx.now + REFRESH_SECONDS)

    def _checked(self, tag: str, after: float) -> None:
        def note(ctx: Context) -> None:
            repo = repositories.find(ctx, self.repository)
            if repo is not None:
                _set_check(ctx.session, repo.id, tag, ctx.now + after)

        self._run(note, write=True)

    # ---- blobs

    def blob(self, digest: str) -> None:
        """Fetch one blob an image of the repository names (its bytes went missing). Raises
        UnableToGetUpstreamLayerException when it cannot."""
        size = self._run(lambda ctx: _declared_size(ctx, self.repository, digest))
        try:
            with self._client() as client:
                self._store_blob(client, Wanted(digest, size))
        except (errors.EcrError, secrets.InvalidSecret, UpstreamError) as exc:
            message = getattr(exc, "message", str(exc))
            raise errors.UnableToGetUpstreamLayerException(
                f"The layer with digest '{digest}' could not be fetched from the upstream registry "
                f"{self.source.url}: {message}") from None

    def _store_blobs(self, client: Registry, wanted: list[Wanted]) -> None:
        """The blobs the repository lacks, ``PARALLEL`` at a time (as pulling clients fetch layers)."""
        held = self._run(lambda ctx: layers.linked_sizes(ctx, repositories.get(ctx, self.repository),
                                                          [w.digest for w in wanted]))
        missing = [w for w in wanted if w.digest not in held]
        if len(missing) <= 1:
            for w in missing:
                self._store_blob(client, w)
            return
        with ThreadPoolExecutor(min(PARALLEL, len(missing)), thread_name_prefix="upstream-fetch") as pool:
            for done in [pool.submit(self._store_blob, client, w) for w in missing]:
                done.result()  # the first failure is the fetch's; the others finish (or fail) meanwhile

    def _store_blob(self, client: Registry, wanted: Wanted) -> None:
        blobs = self.services.blobs
        for _ in range(3):
            if self._run(lambda ctx: self._link_stored(ctx, wanted.digest), write=True):
                return
            with leases.hold(self.services.db, f"blob|{wanted.digest}",
                             lambda: blobs.stat(wanted.digest) is not None) as held:
                if held and blobs.stat(wanted.digest) is None:
                    self._download(client, wanted)
                    return
        raise UpstreamError(NOT_FOUND, f"blob {wanted.digest} vanished from the store while it was linked")

    def _link_stored(self, ctx: Context, digest: str) -> bool:
        """Link bytes already in the store (they are what their digest says) under the blob's lock."""
        lock_blob(ctx.session, digest)
        size = ctx.blobs.stat(digest)
        if size is None:
            return False
        uploads.link_blob(ctx, repositories.get(ctx, self.repository), digest, size)
        return True

    def _download(self, client: Registry, wanted: Wanted) -> None:
        """Stream the blob from upstream through an upload of the repository: staged while hashed,
        verified, placed and linked as a pushed blob is."""
        upload_id = self._run(lambda ctx: uploads.initiate(ctx, self.repository).id, write=True)
        committed = False
        try:
            with client.blob(self.source.repository, wanted.digest, wanted.size) as chunks:
                size = uploads.append(self.services, upload_id, chunks)
            if wanted.size is not None and size != wanted.size:
                raise UpstreamError(NOT_FOUND, f"blob {wanted.digest}: the upstream registry sent {size} bytes, "
                                               f"the manifest declares {wanted.size}")
            uploads.place_ahead(self.services, upload_id, wanted.digest)

            def commit(ctx: Context) -> None:
                repo = repositories.get(ctx, self.repository, for_update=True)
                upload = uploads.get_upload(ctx, repo, upload_id, for_update=True)
                uploads.commit(ctx, repo, upload, wanted.digest, exists_ok=True)

            try:
                self._run(commit, write=True)
            except errors.InvalidLayerException as exc:
                raise UpstreamError(NOT_FOUND, f"blob {wanted.digest}: {exc.message}") from None
            committed = True
        finally:
            if not committed:
                self._cancel(upload_id)

    def _cancel(self, upload_id: str) -> None:
        def drop(ctx: Context) -> None:
            repo = repositories.find(ctx, self.repository)
            if repo is None:
                return
            try:
                uploads.cancel(ctx, repo, uploads.get_upload(ctx, repo, upload_id, for_update=True))
            except errors.UploadNotFoundException:
                pass

        try:
            self._run(drop, write=True)
        except Exception as exc:  # noqa: BLE001 - the collector removes the upload later
            log.warning("could not cancel upload %s of a failed upstream fetch: %s", upload_id, exc)


def _set_check(session: Session, repository_id: int, tag: str, when: float) -> None:
    row = session.get(PullThroughTag, (repository_id, tag))
    if row is None:
        session.add(PullThroughTag(repository_id=repository_id, tag=tag, next_check_at=when))
    else:
        row.next_check_at = when
    session.flush()


def _declared_size(ctx: Context, repository: str, digest: str) -> int | None:
    repo = repositories.get(ctx, repository)
    return ctx.session.scalar(select(ImageBlob.size).join(Image, Image.id == ImageBlob.image_id)
                              .where(Image.repository_id == repo.id, ImageBlob.digest == digest).limit(1))
