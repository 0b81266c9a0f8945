"""Where blob bytes live: a content-addressed store that an object store can implement.

Two parts, shaped by what an object store offers (Distribution's storage drivers are the model):

- ``BlobStore``: blobs by digest. Stat, ranged read, delete, list, place from staging, and an
  optional presigned URL a client can fetch the bytes from directly.
- ``Staging`` (``BlobStore.staging``): the bytes of uploads in progress, as *segments*
  (``[name, size]``: the first ``size`` bytes the driver keeps under ``name``) whose bytes never
  change. An append writes after them and returns the upload's new segment list. ``core``
  records that list (with the upload's size and hash state) in the database under the upload's
  lease, so the database, not a file lock or a process's memory, says what an upload holds. A
  writer that lost its lease cannot damage what another recorded: the bytes it writes are in no
  recorded list, and they go when the upload ends.

Nothing here hashes or judges what may be committed: that belongs to ``core``. Every driver is
held to the same contract by ``tests/test_blobstore_conformance.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol

# A segment as the database records it: [name, size]. Names are the driver's business.
Segment = list  # [str, int]; a list rather than a tuple because it round-trips through JSON

_DIGEST = re.compile(r"^([a-z0-9]+):([a-f0-9]{32,128})$")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class BlobStoreError(OSError):
    """The blob store could not do what was asked (unreachable, refused, misconfigured)."""


class Staging(Protocol):
    def append(self, upload_id: str, segments: list[Segment], chunks: Iterable[bytes]) -> list[Segment]:
        """Write ``chunks`` after the bytes ``segments`` hold; return the segments that now hold
        them all. The bytes an existing segment names are never modified: a driver may replace
        the last segment by a new one that starts with its bytes (S3), or by a longer one that
        names the same file when no other writer has written past it (the filesystem)."""
        ...

    def read(self, upload_id: str, segments: list[Segment]) -> Iterator[bytes]: ...

    def discard(self, upload_id: str) -> None:
        """Remove everything staged for the upload, recorded or not."""
        ...

    def uploads(self) -> Iterator[tuple[str, float]]:
        """(upload id, when its staged data was last written, epoch seconds) of every upload
        with staged data."""
        ...


class BlobStore(Protocol):
    staging: Staging
    # Whether ``place`` may take long (a server-side copy in an object store). Such bytes are
    # placed before the transaction that records the blob, so no lock is held meanwhile; a quick
    # place (a hard link and a rename) runs inside it, which spares a request a transaction.
    slow_place: bool

    def stat(self, digest: str) -> int | None:
        """Size of the stored blob, or None if it is not stored."""
        ...

    def open(self, digest: str, start: int = 0, length: int | None = None) -> BinaryIO:
        """A reader of the blob from byte ``start`` (``length`` bytes, or to the end); raises
        FileNotFoundError if the blob is not stored."""
        ...

    def delete(self, digest: str) -> None: ...

    def list(self) -> Iterator[tuple[str, float]]:
        """(digest, when it was stored, epoch seconds) of every stored blob."""
        ...

    def place(self, upload_id: str, segments: list[Segment], digest: str) -> None:
        """Store the staged bytes under ``digest``, atomically (a reader sees all of them or
        nothing), replacing what is there. Staging is left as it is."""
        ...

    def redirect_url(self, digest: str, expires_in: int) -> str | None:
        """A URL that serves the blob without credentials for ``expires_in`` seconds, or None
        when the store cannot give one (the registry then streams the bytes itself)."""
        ...


def split_digest(digest: str) -> tuple[str, str]:
    """(algorithm, hex) of a digest fit to be a storage path; ValueError otherwise."""
    m = _DIGEST.match(digest)
    if m is None:
        raise ValueError(f"bad digest {digest!r}")
    return m[1], m[2]


def check_upload_id(upload_id: str) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id):
        raise ValueError(f"bad upload id {upload_id!r}")
    return upload_id


class BoundedReader:
    """A reader that stops after ``length`` bytes of ``inner`` (a Range read). Keeps
    ``fileno`` so a server using sendfile (which honours Content-Length) can still use it."""

    def __init__(self, inner: BinaryIO, length: int) -> None:
        self._inner = inner
        self._left = length

    def fileno(self) -> int:
        return self._inner.fileno()

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size is None or size < 0 else min(size, self._left)
        data = self._inner.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> BoundedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(url: str, data_dir, s3_options=None) -> BlobStore:  # type: ignore[no-untyped-def]
    """The store a ``--blob-store`` value names: '' for the data directory, or s3://bucket/prefix."""
    if not url:
        from ecr_emulator.storage.fsstore import FilesystemBlobStore

        return FilesystemBlobStore(data_dir)
    if url.startswith("s3://"):
        from ecr_emulator.storage.s3store import S3BlobStore

        return S3BlobStore.from_url(url, s3_options)
    raise ValueError(f"blob store {url!r} is not supported: leave it empty (the data directory) or "
                     "give s3://bucket[/prefix]")
