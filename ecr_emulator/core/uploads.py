"""Blob uploads: one staging area and one commit path for the layer API and the registry.

Bytes stream into the BlobStore's staging file while they are hashed; nothing holds a blob in
memory. The running hash lives in this process keyed by upload id; when it is missing (the
server restarted) or stale (a transfer broke half-way), it is rebuilt from the staged bytes,
so an interrupted upload can always be resumed. Streaming happens outside any database
transaction; only the short commit step takes the write lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from ecr_emulator.core import errors, repositories
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.naming import DIGEST
from ecr_emulator.storage.models import Blob, Repository, RepositoryBlob, Upload
from ecr_emulator.storage.sql import insert_ignore, lock_blob

PART_SIZE = 10 * 1024 * 1024  # what InitiateLayerUpload advertises (AWS CLI example)
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 4200


class _Hashers:
    """Running sha256 per upload, valid for exactly ``size`` staged bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, tuple[int, hashlib._Hash]] = {}
        self._upload_locks: dict[str, threading.Lock] = {}

    def lock_for(self, upload_id: str) -> threading.Lock:
        with self._lock:
            return self._upload_locks.setdefault(upload_id, threading.Lock())

    @contextmanager
    def exclusive(self, services: Services, upload_id: str) -> Iterator[None]:
        """One writer per upload: threads of this process, then processes sharing the data dir."""
        with self.lock_for(upload_id), services.blobs.upload_lock(upload_id):
            yield

    def current(self, services: Services, upload_id: str, size: int) -> hashlib._Hash:
        with self._lock:
            cached = self._state.get(upload_id)
        if cached is not None and cached[0] == size:
            return cached[1]
        h = hashlib.sha256()
        for chunk in services.blobs.read_upload(upload_id):
            h.update(chunk)
        return h

    def store(self, upload_id: str, size: int, h: hashlib._Hash) -> None:
        with self._lock:
            self._state[upload_id] = (size, h)

    def clear(self) -> None:
        with self._lock:
            self._state.clear()
            self._upload_locks.clear()

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._state.pop(upload_id, None)
            self._upload_locks.pop(upload_id, None)


HASHERS = _Hashers()


def get_upload(ctx: Context, repo: Repository, upload_id: str, *, for_update: bool = False) -> Upload:
    """The upload, or UploadNotFound; ``for_update`` locks its row (PostgreSQL) so that parts of one
    upload sent at the same moment are judged one after the other."""
    upload = ctx.session.get(Upload, upload_id, with_for_update=for_update or None)
    if upload is None or upload.repository_id != repo.id or ctx.blobs.upload_size(upload_id) is None:
        raise errors.UploadNotFoundException(upload_id, repo.name, ctx.registry_id)
    return upload


def initiate(ctx: Context, repository_name: str) -> Upload:
    repo = repositories.get(ctx, repository_name)
    upload = Upload(id=str(uuid.uuid4()), repository_id=repo.id, started_at=ctx.now, updated_at=ctx.now)
    ctx.session.add(upload)
    ctx.session.flush()
    ctx.blobs.create_upload(upload.id)
    return upload


def append(
    services: Services, upload_id: str, chunks: Iterable[bytes], check: Callable[[int], None] | None = None
) -> int:
    """Stream ``chunks`` onto the staged upload, hashing as they pass. Returns the new size.

    ``check(size)`` sees the size before anything is written, while the upload is held, and
    raises to refuse the write (a part that does not continue the upload where it stands)."""
    with HASHERS.exclusive(services, upload_id):
        size = services.blobs.upload_size(upload_id)
        if size is None:
            raise FileNotFoundError(upload_id)
        if check is not None:
            check(size)
        h = HASHERS.current(services, upload_id, size)

        def hashed() -> Iterator[bytes]:
            for chunk in chunks:
                h.update(chunk)
                yield chunk

        try:
            written = services.blobs.append(upload_id, hashed())
        except BaseException:
            HASHERS.forget(upload_id)  # the staged bytes are the truth; rehash on next use
            raise
        HASHERS.store(upload_id, size + written, h)
        return size + written


def touch(ctx: Context, repo: Repository, upload_id: str) -> None:
    """Record activity on an upload (the garbage collector removes uploads idle for too long)."""
    get_upload(ctx, repo, upload_id).updated_at = ctx.now


def _digest(services: Services, upload_id: str) -> tuple[str, int]:
    """sha256 and size of the staged bytes; the caller holds the upload exclusively."""
    size = services.blobs.upload_size(upload_id)
    if size is None:
        raise FileNotFoundError(upload_id)
    h = HASHERS.current(services, upload_id, size)
    HASHERS.store(upload_id, size, h)
    return "sha256:" + h.hexdigest(), size


def is_linked(ctx: Context, repo: Repository, digest: str) -> bool:
    """Whether the repository holds the blob, bytes included (see ``layers.linked_sizes``)."""
    return ctx.session.get(RepositoryBlob, (repo.id, digest)) is not None and ctx.blobs.size(digest) is not None


def link_blob(ctx: Context, repo: Repository, digest: str, size: int) -> None:
    """Make a stored blob visible in ``repo`` (inserting its metadata if this is its first copy)."""
    ctx.session.flush()
    insert_ignore(ctx.session, Blob, {"digest": digest, "size": size, "created_at": ctx.now})
    insert_ignore(ctx.session, RepositoryBlob, {"repository_id": repo.id, "digest": digest, "created_at": ctx.now})


def commit(ctx: Context, repo: Repository, upload: Upload, expected: str, *, exists_ok: bool) -> str:
    """Verify the staged bytes against ``expected`` and move them to the content store.

    Runs inside the caller's write transaction: the rename happens while the write lock is
    held, so the garbage collector (which deletes under the same lock) can never remove a blob
    that a commit is just linking.
    """
    if not DIGEST.fullmatch(expected) or not expected.startswith("sha256:"):
        raise errors.InvalidLayerException(f"Invalid layer digest '{expected}': only sha256 is supported")
    try:
        with HASHERS.exclusive(ctx.services, upload.id):  # nothing may append between hash and rename
            actual, size = _digest(ctx.services, upload.id)
            if actual != expected:
                raise errors.InvalidLayerException(
                    f"The layer digest '{expected}' does not match the digest of the uploaded bytes '{actual}'"
                )
            lock_blob(ctx.session, expected)
            if not exists_ok and is_linked(ctx, repo, expected):
                raise errors.LayerAlreadyExistsException(
                    f"The layer with digest '{expected}' already exists in the repository with name "
                    f"'{repo.name}' in the registry with id '{ctx.registry_id}'"
                )
            link_blob(ctx, repo, expected, size)
            ctx.session.delete(upload)
            ctx.session.flush()
            ctx.blobs.commit(upload.id, expected)
    except FileNotFoundError as exc:  # committed or cancelled meanwhile
        raise errors.UploadNotFoundException(upload.id, repo.name, ctx.registry_id) from exc
    HASHERS.forget(upload.id)
    return expected


def cancel(ctx: Context, repo: Repository, upload: Upload) -> None:
    ctx.session.delete(upload)
    ctx.session.flush()
    blobs, upload_id = ctx.blobs, upload.id
    ctx.after_commit.append(lambda: (blobs.discard(upload_id), HASHERS.forget(upload_id)))


# ---- the layer API (InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload) ----


def upload_part(
    ctx: Context, repository_name: str, upload_id: str, first: int, last: int, data: bytes
) -> int:
    repo = repositories.get(ctx, repository_name)
    upload = get_upload(ctx, repo, upload_id, for_update=True)
    before = 0

    def invalid(message: str, size: int) -> errors.InvalidLayerPartException:
        return errors.InvalidLayerPartException(
            message, registry_id=ctx.registry_id, name=repo.name, upload_id=upload_id, last_valid=max(size - 1, 0)
        )

    def continues(size: int) -> None:
        """Judged against the staged size while the upload is held: two parts sent at once
        cannot both start at the same byte."""
        nonlocal before
        before = size
        if first != size:
            raise invalid(
                f"The part's first byte {first} does not follow the last byte received {size - 1}"
                if size else f"The first part must start at byte 0, not {first}", size
            )
        if last < first or len(data) != last - first + 1:
            raise invalid(
                f"The part's byte range {first}-{last} does not match the {len(data)} bytes of layerPartBlob", size
            )
        if upload.parts >= MAX_PARTS:
            raise errors.LimitExceededException(f"An upload may not have more than {MAX_PARTS} parts.")

    services, held = ctx.services, []

    def undo() -> None:
        """The part's bytes must not outlive a failure, even one half-way through writing them;
        bytes another part appended since are left alone."""
        if not held:
            return
        with contextlib.suppress(FileNotFoundError), HASHERS.exclusive(services, upload_id):
            if (services.blobs.upload_size(upload_id) or 0) <= before + len(data):
                services.blobs.truncate_upload(upload_id, before)

    ctx.on_rollback.append(undo)
    append(ctx.services, upload_id, [data], check=lambda size: (continues(size), held.append(True)))
    if upload.parts > 0 and upload.last_part_size < MIN_PART_SIZE:
        upload.small_part_seen = True
    upload.parts += 1
    upload.last_part_size = len(data)
    upload.updated_at = ctx.now
    ctx.session.flush()
    return last


def complete(ctx: Context, repository_name: str, upload_id: str, digests: list[str]) -> str:
    repo = repositories.get(ctx, repository_name, for_update=True)
    upload = get_upload(ctx, repo, upload_id, for_update=True)
    if upload.parts == 0 or not ctx.blobs.upload_size(upload_id):
        raise errors.EmptyUploadException(f"The upload with id '{upload_id}' does not contain any layer parts.")
    if upload.small_part_seen:
        raise errors.LayerPartTooSmallException(
            f"Every layer part except the last must be at least {MIN_PART_SIZE} bytes."
        )
    for d in digests:
        if not DIGEST.fullmatch(d):
            raise errors.InvalidLayerException(f"Invalid layer digest '{d}'")
    return commit(ctx, repo, upload, digests[0], exists_ok=False)

