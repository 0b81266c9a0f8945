"""Blob uploads: one staging area and one commit path for the layer API and the registry.

The upload's row is the truth about it, on every replica: how many bytes are recorded, the
staging segments holding them, and the sha256 state after them (serialised with ``rehashes``,
as ``hashlib`` objects cannot be). Any replica can therefore continue an upload another one
started, and nothing is rehashed: a PATCH restores the state, hashes its bytes as they stream
into new segments, and records the new state together with the new segments and size.

A registry PATCH streams with no transaction open and holds the upload's lease instead
(``upload_leases``); an UploadLayerPart (whose body is already in memory) appends inside its
request's transaction, holding the upload's row lock. Commit verifies the digest from the
recorded state and places the bytes at their content address under the blob's lock.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rehashes import PySha256
from sqlalchemy import bindparam, delete, select, update

from ecr_emulator.core import errors, layers, repositories
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.naming import DIGEST
from ecr_emulator.core.upload_leases import UploadBusy, hold, is_leased
from ecr_emulator.storage.blobstore import BlobStore
from ecr_emulator.storage.models import Blob, Repository, RepositoryBlob, Upload
from ecr_emulator.storage.prepared import Prepared, columns
from ecr_emulator.storage.sql import insert_ignore, insert_loaded, lock_blob

__all__ = ["UploadBusy", "append", "append_read", "begin", "cancel", "commit", "complete", "get_upload", "initiate", "mount",
           "place_ahead", "upload_part"]

log = logging.getLogger(__name__)

PART_SIZE = 10 * 1024 * 1024  # what InitiateLayerUpload advertises (AWS CLI example)
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 4200

# Built once (see core/repositories.py): every layer API call runs them.
_ROW = select(*columns(Upload)).where(Upload.id == bindparam("upload"))
_ROW_READ, _ROW_LOCKED = Prepared(_ROW), Prepared(_ROW.with_for_update())
_FORGET = Prepared(delete(Upload).where(Upload.id == bindparam("upload")))
_LINKED = Prepared(select(RepositoryBlob.digest).where(RepositoryBlob.repository_id == bindparam("repository"),
                                                       RepositoryBlob.digest == bindparam("digest")))


# ---- the running sha256, kept in the upload's row


def _hasher(blobs: BlobStore, upload_id: str, segments: list[list[Any]], state: bytes | None) -> PySha256:
    """The sha256 state after the recorded bytes: restored from the row, or (a state written by
    another version of the hashing library, a row from before states were kept) recomputed
    from the staged segments."""
    if state is not None:
        try:
            return PySha256.deserialize(state)
        except Exception:  # noqa: BLE001 - any unreadable state is recomputed
            pass
    h = PySha256()
    for chunk in blobs.staging.read(upload_id, segments):
        h.update(chunk)
    return h


def _recorded_digest(blobs: BlobStore, upload: Upload) -> str:
    return "sha256:" + _hasher(blobs, upload.id, list(upload.segments or []), upload.hash_state).finalize()


class _Tap:
    """A request body on its way to staging, hashed and counted as it passes. A failing source
    ends the stream cleanly, so what arrived before the fault is kept and recorded (a client
    resumes from the size it is told, as the distribution protocol expects); the failure is
    raised again once that is done. A failure of the store itself records nothing."""

    def __init__(self, source: Iterable[bytes], hasher: PySha256) -> None:
        self._source, self.hasher = source, hasher
        self.count = 0
        self.error: BaseException | None = None

    def __iter__(self) -> Iterator[bytes]:
        it = iter(self._source)
        while True:
            try:
                chunk = next(it)
            except StopIteration:
                return
            except Exception as exc:  # noqa: BLE001 - re-raised by the caller after recording
                self.error = exc
                return
            if chunk:
                self.hasher.update(chunk)
                self.count += len(chunk)
                yield chunk


# ---- the upload row


def get_upload(ctx: Context, repo: Repository, upload_id: str, *, for_update: bool = False) -> Upload:
    """The upload, or UploadNotFound; ``for_update`` locks its row (PostgreSQL) so that parts of one
    upload sent at the same moment are judged one after the other."""
    upload = (_ROW_LOCKED if for_update else _ROW_READ).object(ctx.session, Upload, {"upload": upload_id})
    if upload is None or upload.repository_id != repo.id:
        raise errors.UploadNotFoundException(upload_id, repo.name, ctx.registry_id)
    return upload


def initiate(ctx: Context, repository_name: str) -> Upload:
    return begin(ctx, repositories.get(ctx, repository_name))


def begin(ctx: Context, repo: Repository) -> Upload:
    """A new upload into ``repo`` (a repository the caller has already looked up)."""
    return insert_loaded(ctx.session, Upload, {
        "id": str(uuid.uuid4()), "repository_id": repo.id, "started_at": ctx.now, "updated_at": ctx.now,
        "parts": 0, "last_part_size": 0, "small_part_seen": False, "size": 0, "segments": [],
        "hash_state": PySha256().serialize(), "lease_token": None, "lease_until": None})


def append(
    services: Services, upload_id: str, chunks: Iterable[bytes], check: Callable[[int], None] | None = None
) -> int:
    """Stream ``chunks`` onto the upload (registry PATCH, or a PUT/POST with a body) under its
    lease. Returns the new size.

    ``check(size)`` sees the recorded size before anything is written, while the lease is held,
    and raises to refuse the write (a chunk that does not continue the upload where it stands).
    Raises FileNotFoundError if the upload is gone (committed, cancelled, collected),
    UploadBusy if another request holds it."""
    blobs = services.blobs
    with hold(services.db, upload_id) as held:
        if check is not None:
            check(held.size)
        tap = _Tap(chunks, _hasher(blobs, upload_id, held.segments, held.hash_state))
        segments = blobs.staging.append(upload_id, held.segments, tap)
        size = held.size + tap.count
        if tap.count and not held.record(size=size, segments=segments, hash_state=tap.hasher.serialize(),
                                         updated_at=services.clock.now()):
            raise UploadBusy(f"upload {upload_id} was completed, cancelled or taken over while this request "
                             "wrote to it")
    if tap.error is not None:
        raise tap.error
    return size


def append_read(
    ctx: Context, repo: Repository, upload_id: str, data: bytes, check: Callable[[int], None] | None = None
) -> int | None:
    """Append a request body already read whole (a small registry PATCH) within this unit,
    holding the upload's row lock instead of a lease: one transaction where a streamed append
    (``append``) takes three. ``check(size)`` as for ``append``. None, with nothing written, when
    a streamed append holds the upload's lease: the caller then waits for it through ``append``."""
    upload = get_upload(ctx, repo, upload_id, for_update=True)
    if is_leased(upload):
        return None
    if check is not None:
        check(upload.size)
    return _append_locked(ctx, upload, data) if data else upload.size


def _append_locked(ctx: Context, upload: Upload, data: bytes, **values: Any) -> int:
    """Append ``data`` to ``upload``, whose row this unit holds locked: a new segment, then the
    segments, size and running hash (and ``values``) recorded in the row. If the transaction
    rolls back, the segment is in no recorded list and goes when the upload ends. Returns the
    new size."""
    recorded = list(upload.segments or [])
    hasher = _hasher(ctx.blobs, upload.id, recorded, upload.hash_state)
    hasher.update(data)
    segments = ctx.blobs.staging.append(upload.id, recorded, [data])
    size = upload.size + len(data)
    values = {"segments": segments, "size": size, "hash_state": hasher.serialize(), "updated_at": ctx.now, **values}
    _record_part(tuple(values)).run(ctx.session, {"upload": upload.id, **values})
    ctx.session.expire(upload)
    return size


@functools.cache
def _record_part(columns: tuple[str, ...]) -> Prepared:
    return Prepared(update(Upload).where(Upload.id == bindparam("upload"))
                    .values({column: bindparam(column) for column in columns}))


def link_blob(ctx: Context, repo: Repository, digest: str, size: int) -> None:
    """Make a stored blob visible in ``repo`` (inserting its metadata if this is its first copy)."""
    ctx.session.flush()
    insert_ignore(ctx.session, Blob, {"digest": digest, "size": size, "created_at": ctx.now})
    insert_ignore(ctx.session, RepositoryBlob, {"repository_id": repo.id, "digest": digest, "created_at": ctx.now})


def mount(ctx: Context, target: Repository, source: Repository, digest: str) -> bool:
    """Link a blob ``source`` holds into ``target`` (a cross-repository mount); False if the
    source does not hold it, bytes included. Under the blob's lock, so the collector cannot
    delete the bytes between this check and the new link."""
    lock_blob(ctx.session, digest)
    size = layers.linked_sizes(ctx, source, [digest]).get(digest)
    if size is None:
        return False
    link_blob(ctx, target, digest, size)
    return True


def place_ahead(services: Services, upload_id: str, expected: str) -> None:
    """Put an upload's bytes at their content address before the commit's transaction, so that
    a slow placement (a server-side copy in an object store) holds no lock. Bytes placed for a
    commit that then fails have no row; the collector removes them after a grace period. The
    commit checks again under the blob's lock, so a collection in between is harmless. Nothing
    to do for a store that places quickly: the commit places the bytes itself."""
    if not services.blobs.slow_place:
        return
    upload = services.db.run(lambda s: _ROW_READ.object(s, Upload, {"upload": upload_id}))
    if upload is None or not DIGEST.fullmatch(expected) or not expected.startswith("sha256:"):
        return
    if _recorded_digest(services.blobs, upload) == expected and services.blobs.stat(expected) != upload.size:
        services.blobs.place(upload.id, list(upload.segments or []), expected)


def commit(ctx: Context, repo: Repository, upload: Upload, expected: str, *, exists_ok: bool) -> str:
    """Verify the recorded bytes against ``expected``, place them at their content address and
    link them; the caller holds the repository's and the upload's row locks.

    The bytes are placed (or found placed) while the blob's lock is held, the lock the garbage
    collector takes before it deletes bytes that no row names: it cannot remove a blob this
    commit is linking. Bytes of a request still streaming into the upload are not part of it.
    """
    if not DIGEST.fullmatch(expected) or not expected.startswith("sha256:"):
        raise errors.InvalidLayerException(f"Invalid layer digest '{expected}': only sha256 is supported")
    actual = _recorded_digest(ctx.blobs, upload)
    if actual != expected:
        raise errors.InvalidLayerException(
            f"The layer digest '{expected}' does not match the digest of the uploaded bytes '{actual}'"
        )
    lock_blob(ctx.session, expected)
    stored = ctx.blobs.stat(expected)
    if not exists_ok and stored == upload.size and _LINKED.first(
            ctx.session, {"repository": repo.id, "digest": expected}) is not None:
        raise errors.LayerAlreadyExistsException(
            f"The layer with digest '{expected}' already exists in the repository with name "
            f"'{repo.name}' in the registry with id '{ctx.registry_id}'"
        )
    if stored != upload.size:
        ctx.blobs.place(upload.id, list(upload.segments or []), expected)
    link_blob(ctx, repo, expected, upload.size)
    _forget(ctx, upload)
    return expected


def cancel(ctx: Context, repo: Repository, upload: Upload) -> None:
    _forget(ctx, upload)


def _forget(ctx: Context, upload: Upload) -> None:
    """Delete the upload's row; its staged segments go once that is committed."""
    ctx.session.flush()
    _FORGET.run(ctx.session, {"upload": upload.id})
    ctx.session.expunge(upload)
    staging, upload_id = ctx.blobs.staging, upload.id
    ctx.after_commit.append(lambda: _DISCARDS.add(staging, upload_id))


class _Discards:
    """Staging of ended uploads, removed by a thread of this process rather than before the
    response: removing a directory cost 1-2 ms of filesystem metadata writes here (an object
    store's deletes cost more), a third of a small blob's PUT. A process that dies with some
    still queued leaves them to the collector, which removes staging no upload row names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Any, str]] = queue.SimpleQueue()
        self._pid = 0

    def add(self, staging: Any, upload_id: str) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first one in this process (or a fork's child)
                self._pid = os.getpid()
                self._queue = queue.SimpleQueue()
                threading.Thread(target=self._run, args=(self._queue,), name="staging-discards", daemon=True).start()
            self._queue.put((staging, upload_id))

    @staticmethod
    def _run(work: queue.SimpleQueue[tuple[Any, str]]) -> None:
        while True:
            staging, upload_id = work.get()
            try:
                staging.discard(upload_id)
            except Exception as exc:  # noqa: BLE001 - the collector removes it later
                log.warning("could not remove the staging of upload %s: %s", upload_id, exc)


_DISCARDS = _Discards()


# ---- the layer API (InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload) ----


def upload_part(
    ctx: Context, repository_name: str, upload_id: str, first: int, last: int, data: bytes
) -> int:
    """Append one part inside the request's transaction, holding the upload's row lock: parts
    sent at the same moment are judged one after the other. If the transaction rolls back, the
    part's segment is in no recorded list and goes when the upload ends."""
    repo = repositories.get(ctx, repository_name)
    upload = get_upload(ctx, repo, upload_id, for_update=True)
    size = upload.size

    def invalid(message: str) -> errors.InvalidLayerPartException:
        return errors.InvalidLayerPartException(
            message, registry_id=ctx.registry_id, name=repo.name, upload_id=upload_id, last_valid=max(size - 1, 0)
        )

    if is_leased(upload):
        raise invalid("Another request is writing to this upload; send the part again when it has finished")
    if first != size:
        raise invalid(f"The part's first byte {first} does not follow the last byte received {size - 1}"
                      if size else f"The first part must start at byte 0, not {first}")
    if last < first or len(data) != last - first + 1:
        raise invalid(f"The part's byte range {first}-{last} does not match the {len(data)} bytes of layerPartBlob")
    if upload.parts >= MAX_PARTS:
        raise errors.LimitExceededException(f"An upload may not have more than {MAX_PARTS} parts.")
    _append_locked(ctx, upload, data, parts=upload.parts + 1, last_part_size=len(data),
                   small_part_seen=upload.small_part_seen or (upload.parts > 0 and upload.last_part_size < MIN_PART_SIZE))
    return last


def complete(ctx: Context, repository_name: str, upload_id: str, digests: list[str]) -> str:
    repo = repositories.get(ctx, repository_name, for_update=True)
    upload = get_upload(ctx, repo, upload_id, for_update=True)
    if upload.parts == 0 or not upload.size:
        raise errors.EmptyUploadException(f"The upload with id '{upload_id}' does not contain any layer parts.")
    if upload.small_part_seen:
        raise errors.LayerPartTooSmallException(
            f"Every layer part except the last must be at least {MIN_PART_SIZE} bytes."
        )
    for d in digests:
        if not DIGEST.fullmatch(d):
            raise errors.InvalidLayerException(f"Invalid layer digest '{d}'")
    return commit(ctx, repo, upload, digests[0], exists_ok=False)

