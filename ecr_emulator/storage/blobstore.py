"""BlobStore: where blob bytes live. A narrow interface so a second driver (S3) can plug in.

Staging: an upload appends to ``uploads/<id>``; ``commit`` moves it atomically to its
content address ``blobs/sha256/<ab>/<hex>``. Readers get a real file object, so the server
can hand it to ``sendfile`` and serve ranges without reading the blob into memory.
Hashing and every rule about what may be committed belong to ``core``, not here.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK = 1024 * 1024


class BlobStore(Protocol):
    def append(self, upload_id: str, chunks: Iterable[bytes]) -> int: ...
    def create_upload(self, upload_id: str) -> None: ...
    def upload_lock(self, upload_id: str) -> AbstractContextManager[None]: ...
    def upload_size(self, upload_id: str) -> int | None: ...
    def read_upload(self, upload_id: str) -> Iterator[bytes]: ...
    def truncate_upload(self, upload_id: str, size: int) -> None: ...
    def commit(self, upload_id: str, digest: str) -> None: ...
    def discard(self, upload_id: str) -> None: ...
    def uploads(self) -> Iterator[tuple[str, float]]: ...
    def size(self, digest: str) -> int | None: ...
    def open(self, digest: str) -> BinaryIO: ...
    def delete(self, digest: str) -> None: ...
    def digests(self) -> Iterator[str]: ...


class FilesystemBlobStore:
    """The embedded default: one directory tree under the data dir."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blob_root = self.root / "blobs"
        self.upload_root = self.root / "uploads"
        self.blob_root.mkdir(parents=True, exist_ok=True)
        self.upload_root.mkdir(parents=True, exist_ok=True)

    # ---- uploads ----

    def _upload_path(self, upload_id: str) -> Path:
        if not upload_id or "/" in upload_id or upload_id.startswith("."):
            raise ValueError(f"bad upload id {upload_id!r}")
        return self.upload_root / upload_id

    def append(self, upload_id: str, chunks: Iterable[bytes]) -> int:
        """Append chunks to the staging file; returns the number of bytes written.

        If the chunk source fails half-way, what was written stays: the upload's size tells a
        client where to resume, as the distribution protocol expects.
        """
        written = 0
        with open(self._upload_path(upload_id), "ab") as fh:
            for chunk in chunks:
                if chunk:
                    fh.write(chunk)
                    written += len(chunk)
        return written

    def upload_size(self, upload_id: str) -> int | None:
        try:
            return self._upload_path(upload_id).stat().st_size
        except FileNotFoundError:
            return None

    @contextmanager
    def upload_lock(self, upload_id: str) -> Iterator[None]:
        """Hold the staging file exclusively (across processes) while it is written or committed.

        Raises FileNotFoundError if the upload is gone, including when it was committed (renamed
        into the content store) while this caller waited for the lock.
        """
        path = self._upload_path(upload_id)
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    raise FileNotFoundError(upload_id)
            except FileNotFoundError:
                raise FileNotFoundError(upload_id) from None
            yield
        finally:
            os.close(fd)

    def read_upload(self, upload_id: str) -> Iterator[bytes]:
        with open(self._upload_path(upload_id), "rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    def truncate_upload(self, upload_id: str, size: int) -> None:
        with open(self._upload_path(upload_id), "r+b") as fh:
            fh.truncate(size)

    def create_upload(self, upload_id: str) -> None:
        self._upload_path(upload_id).touch()

    def commit(self, upload_id: str, digest: str) -> None:
        """Move the staged bytes to their content address (atomic rename on one filesystem)."""
        src = self._upload_path(upload_id)
        dst = self._blob_path(digest)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():  # same content already stored: keep the existing copy
            src.unlink(missing_ok=True)
            return
        with open(src, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(src, dst)

    def discard(self, upload_id: str) -> None:
        self._upload_path(upload_id).unlink(missing_ok=True)

    def uploads(self) -> Iterator[tuple[str, float]]:
        for entry in os.scandir(self.upload_root):
            if entry.is_file():
                yield entry.name, entry.stat().st_mtime

    # ---- blobs ----

    def _blob_path(self, digest: str) -> Path:
        algo, sep, hexpart = digest.partition(":")
        if not sep or not algo.isalnum() or not hexpart.isalnum() or len(hexpart) < 2:
            raise ValueError(f"bad digest {digest!r}")
        return self.blob_root / algo / hexpart[:2] / hexpart

    def size(self, digest: str) -> int | None:
        try:
            return self._blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, digest: str) -> BinaryIO:
        return open(self._blob_path(digest), "rb")

    def delete(self, digest: str) -> None:
        self._blob_path(digest).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        """Every stored blob (the garbage collector compares them with the database)."""
        for algo in os.scandir(self.blob_root):
            if not algo.is_dir():
                continue
            for prefix in os.scandir(algo.path):
                if prefix.is_dir():
                    for entry in os.scandir(prefix.path):
                        if entry.is_file() and entry.name.startswith(prefix.name):
                            yield f"{algo.name}:{entry.name}"
