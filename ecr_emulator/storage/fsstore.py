"""The embedded blob store: one directory tree under the data directory.

``blobs/<algo>/<ab>/<hex>`` holds each blob; ``uploads/<upload id>/<segment>`` the segments of
uploads in progress. A segment ``[name, size]`` is the first ``size`` bytes of file ``name``: an
append writes on in the last segment's file when nothing else does or did (``_held``),
else in a new file, so the bytes a recorded list names never change. Placing a blob hard-links
its only segment (or concatenates several into a temporary file in the upload's directory) and
renames the result over the content address, so a reader sees the whole blob or none of it.
Blob readers are real files, so ranges are a seek and the server could hand them to ``sendfile``.

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
import fcntl
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


def _copy(src: BinaryIO, out: BinaryIO, size: int, name: str) -> None:
    """Append the first ``size`` bytes of ``src`` (segment ``name``) to ``out``: inside the
    kernel (``copy_file_range``; a reflink where the filesystem shares extents, as XFS and Btrfs
    do), else read and written here. On ext4 the kernel's copy of 256 MiB took 70-100 ms, the
    copy through this process 140 ms."""
    left = size
    if hasattr(os, "copy_file_range"):
        out.flush()  # the kernel writes at the descriptor's offset, after what is written, not buffered
        try:
            while left and (copied := os.copy_file_range(src.fileno(), out.fileno(), min(left, KERNEL_COPY_BLOCK))):
                left -= copied
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
    while left and (chunk := src.read(min(left, COPY_BLOCK))):  # on from where the kernel's copy stopped
        out.write(chunk)
        left -= len(chunk)
    if left:
        raise _short(name)


def _segment_name(name: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad segment name {name!r}")
    return name


def _short(name: str) -> OSError:
    return OSError(errno.EIO, f"staged segment {name} holds fewer bytes than its upload recorded")


def _held(path: str, size: int) -> int | None:
    """A descriptor of the staged file ``path``, holding its exclusive ``flock``, when the file
    may be written on or linked as a blob: nobody else holds it (a writer that lost its lease
    may still be writing), it holds exactly the ``size`` bytes recorded (a writer that died, a
    rolled-back transaction or a second writer given the same list leaves more), and it is not
    yet a blob (placing hard-links a lone segment). None otherwise, and where it cannot be
    opened or locked: the caller then writes a new file or copies. Opened for writing: NFS
    emulates flock with byte-range locks, which refuse an exclusive lock on a descriptor opened
    for reading only. The lock is the kernel's, seen by every process on this host; servers on
    several hosts share blobs through the S3 store, not a network filesystem whose ``flock``
    each client may keep to itself."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        info = os.fstat(fd)
        if info.st_size == size and info.st_nlink == 1:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


class FilesystemStaging:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, upload_id: str) -> Path:
        return self.root / check_upload_id(upload_id)

    def path(self, upload_id: str, name: str) -> Path:
        return self._dir(upload_id) / _segment_name(name)

    def append(self, upload_id: str, segments: list[Segment], chunks: Iterable[bytes]) -> list[Segment]:
        """Write the bytes after the last segment's, in its own file when that file may be
        written on (``_held``), else in a new one; either way they are written out before the
        returned list names them (the database may record it the next moment). So a chunked
        upload is one file, placed by a link like a monolithic one (a copy of the whole blob was
        half of a 256 MiB chunked push here). On a failure of the store the file is put back as
        it was."""
        # Strings rather than Paths: for a small part, pathlib's joins cost more than the write.
        directory = os.path.join(self.root, check_upload_id(upload_id))
        try:
            os.mkdir(directory)
        except FileExistsError:
            pass
        kept = list(segments)
        fd = None
        if kept:
            name, start = _segment_name(kept[-1][0]), int(kept[-1][1])
            path = os.path.join(directory, name)
            fd = _held(path, start)
        continued = fd is not None
        if continued:
            kept.pop()
        else:
            name, start = uuid.uuid4().hex, 0
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        end = start
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    written = os.pwrite(fd, view, end)
                    end += written
                    view = view[written:]
        except BaseException:
            if continued:
                os.ftruncate(fd, start)  # still holding its lock: back to the recorded bytes
            else:
                _unlink(path)
            raise
        finally:
            os.close(fd)
        if end == start:
            if not continued:
                os.unlink(path)
            return list(segments)
        return [*kept, [name, end]]

    def read(self, upload_id: str, segments: list[Segment]) -> Iterator[bytes]:
        for name, size in segments:
            left = int(size)
            with open(self.path(upload_id, name), "rb") as fh:
                while left:
                    chunk = fh.read(min(left, COPY_BLOCK))
                    if not chunk:
                        raise _short(name)
                    left -= len(chunk)
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
            if not (len(segments) == 1 and self._linked(self.staging.path(upload_id, segments[0][0]),
                                                        int(segments[0][1]), tmp)):
                with open(tmp, "xb") as out:
                    for name, size in segments:
                        with open(self.staging.path(upload_id, name), "rb") as src:
                            _copy(src, out, int(size), name)
            os.replace(tmp, dst)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _linked(src: Path, size: int, dst: Path) -> bool:
        """Hard-link the only segment instead of copying it, under its lock, when ``_held``
        allows; False otherwise, and where the filesystem has no hard links."""
        fd = _held(str(src), size)
        if fd is None:
            return False
        try:
            os.link(src, dst)
        except OSError:
            return False
        finally:
            os.close(fd)
        return True

    def redirect_url(self, digest: str, expires_in: int) -> str | None:
        return None  # the registry streams the file itself
