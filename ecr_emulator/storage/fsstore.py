"""The embedded blob store: one directory tree under the data directory.

``blobs/<algo>/<ab>/<hex>`` holds each blob; ``uploads/<upload id>/<segment>`` the segments of
uploads in progress, one file per append. Placing a blob hard-links its only segment (or
concatenates several into a temporary file in the upload's directory) and renames the result
over the content address, so a reader sees the whole blob or none of it. Blob readers are
real files, so ranges are a seek and the server could hand them to ``sendfile``.

Bytes are written to the kernel, not forced to the disk (no ``fsync``): once a write returns,
the server's process dying (``kill -9``) loses none of them, and the request is answered after
that. A power loss or kernel crash can lose the bytes of the last uploads, as SQLite's
``synchronous=NORMAL`` can lose its last transactions; a blob whose file is then missing or
shorter than its row says counts as missing (``core/layers.linked_sizes``) and a client's
re-push puts it back. Forcing each segment to the disk cost about a millisecond per request
here (a third of a small blob's PATCH), which Distribution does not pay either.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ecr_emulator.storage.blobstore import BoundedReader, Segment, check_upload_id, split_digest

COPY_BLOCK = 4 * 1024 * 1024
KERNEL_COPY_BLOCK = 64 * 1024 * 1024  # asked for per copy_file_range call (it may copy less; the loop goes on)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# copy_file_range's refusals that mean "not between these two files": copy through this process
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}


def _copy(src: BinaryIO, out: BinaryIO) -> None:
    """Append the rest of ``src`` to ``out``: inside the kernel (``copy_file_range``; a reflink
    where the filesystem shares extents, as XFS and Btrfs do), else read and written here. On
    ext4 the kernel's copy took 70-100 ms for a 256 MiB chunked upload's segments, the copy
    through this process 140 ms (``scripts/bench/registry.py``'s chunked push places eight)."""
    if hasattr(os, "copy_file_range"):
        try:
            while os.copy_file_range(src.fileno(), out.fileno(), KERNEL_COPY_BLOCK):
                pass
            return
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
    shutil.copyfileobj(src, out, COPY_BLOCK)  # goes on from where the kernel's copy stopped


class FilesystemStaging:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, upload_id: str) -> Path:
        return self.root / check_upload_id(upload_id)

    def path(self, upload_id: str, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"bad segment name {name!r}")
        return self._dir(upload_id) / name

    def append(self, upload_id: str, segments: list[Segment], chunks: Iterable[bytes]) -> list[Segment]:
        """One new segment file per append, written out before it is named in the returned list
        (the database may record it the next moment)."""
        # Strings rather than Paths: for a small part, pathlib's joins cost more than the write.
        directory = os.path.join(self.root, check_upload_id(upload_id))
        try:
            os.mkdir(directory)
        except FileExistsError:
            pass
        name = uuid.uuid4().hex
        path = os.path.join(directory, name)
        written = 0
        try:
            with open(path, "xb") as fh:
                for chunk in chunks:
                    if chunk:
                        fh.write(chunk)
                        written += len(chunk)
        except BaseException:
            _unlink(path)
            raise
        if written == 0:
            os.unlink(path)
            return list(segments)
        return [*segments, [name, written]]

    def read(self, upload_id: str, segments: list[Segment]) -> Iterator[bytes]:
        for name, _size in segments:
            with open(self.path(upload_id, name), "rb") as fh:
                while chunk := fh.read(COPY_BLOCK):
                    yield chunk

    def discard(self, upload_id: str) -> None:
        path = self._dir(upload_id)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)  # an upload staged by a version that kept one file per upload

    def uploads(self) -> Iterator[tuple[str, float]]:
        for entry in os.scandir(self.root):
            try:
                newest = entry.stat().st_mtime
                if entry.is_dir():
                    for inner in os.scandir(entry.path):
                        newest = max(newest, inner.stat().st_mtime)
            except FileNotFoundError:
                continue  # discarded meanwhile
            yield entry.name, newest


class FilesystemBlobStore:
    """The embedded default: blobs and upload staging under one directory."""

    slow_place = False  # a hard link (or a local copy of several segments) and a rename

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blob_root = self.root / "blobs"
        self.blob_root.mkdir(parents=True, exist_ok=True)
        self._blob_root = str(self.blob_root)
        self.staging = FilesystemStaging(self.root / "uploads")

    def _blob_path(self, digest: str) -> str:
        """A string, not a Path: every blob HEAD, availability check and push stats blobs, and
        three pathlib joins cost more than the stat."""
        algo, hexpart = split_digest(digest)
        return f"{self._blob_root}/{algo}/{hexpart[:2]}/{hexpart}"

    def stat(self, digest: str) -> int | None:
        try:
            return os.stat(self._blob_path(digest)).st_size
        except FileNotFoundError:
            return None

    def open(self, digest: str, start: int = 0, length: int | None = None) -> BinaryIO:
        fh = open(self._blob_path(digest), "rb")
        if start:
            fh.seek(start)
        if length is None or start + length >= os.fstat(fh.fileno()).st_size:
            return fh
        return BoundedReader(fh, length)  # type: ignore[return-value]

    def delete(self, digest: str) -> None:
        _unlink(self._blob_path(digest))

    def list(self) -> Iterator[tuple[str, float]]:
        for algo in os.scandir(self.blob_root):
            if not algo.is_dir():
                continue
            for prefix in os.scandir(algo.path):
                if not prefix.is_dir():
                    continue
                for entry in os.scandir(prefix.path):
                    if entry.is_file() and entry.name.startswith(prefix.name):
                        try:
                            yield f"{algo.name}:{entry.name}", entry.stat().st_mtime
                        except FileNotFoundError:
                            continue

    def place(self, upload_id: str, segments: list[Segment], digest: str) -> None:
        dst = self._blob_path(digest)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        tmp = self.staging.path(upload_id, "place-" + uuid.uuid4().hex)
        tmp.parent.mkdir(exist_ok=True)
        try:
            if not (len(segments) == 1 and self._linked(self.staging.path(upload_id, segments[0][0]), tmp)):
                with open(tmp, "xb") as out:
                    for name, _size in segments:
                        with open(self.staging.path(upload_id, name), "rb") as src:
                            _copy(src, out)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _linked(src: Path, dst: Path) -> bool:
        """Hard-link a segment instead of copying it; False where
        the filesystem has no hard links."""
        try:
            os.link(src, dst)
            return True
        except FileNotFoundError:
            raise
        except OSError:
            return False

    def redirect_url(self, digest: str, expires_in: int) -> str | None:
        return None  # the registry streams the file itself
