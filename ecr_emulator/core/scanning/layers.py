"""Applying an image's layers in order, in memory, keeping only the files the scanner reads.

Nothing is ever extracted to disk: each layer is streamed (gzip, zstd or plain tar, recognised
by its magic bytes, whatever the media type claims) and only package databases, os-release and
language package metadata are read, each under a size limit. OCI whiteouts (``.wh.<name>`` and the
opaque ``.wh..wh..opq``) remove what lower layers put there. A decompression bomb hits the
image-wide byte budget, an entry that climbs out of the root with ``..`` is refused: either ends
the scan as FAILED with that reason instead of a crash.
"""

from __future__ import annotations

import gzip
import re
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_ENTRIES_PER_LAYER = 2_000_000
MAX_SYMLINK_HOPS = 40
ZSTD_MAX_WINDOW = 1 << 27

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# Files whose every version matters (to tell which layer introduced each package).
PACKAGE_DATABASES = ("var/lib/dpkg/status", "lib/apk/db/installed")
WANTED_EXACT = frozenset({*PACKAGE_DATABASES, "etc/os-release", "usr/lib/os-release", "etc/debian_version",
                          "etc/alpine-release"})
WANTED_PATTERN = re.compile(
    r"var/lib/dpkg/status\.d/[^/]+"
    r"|(?:.*/)?[^/]+\.dist-info/METADATA"
    r"|(?:.*/)?[^/]+\.egg-info(?:/PKG-INFO)?"
    r"|(?:.*/)?node_modules/(?:@[^/]+/)?[^/]+/package\.json"
)


class ScanError(Exception):
    """The image cannot be scanned; the message becomes the FAILED status description."""


def wanted(path: str) -> bool:
    return path in WANTED_EXACT or WANTED_PATTERN.fullmatch(path) is not None


@dataclass
class FileVersion:
    data: bytes
    layer: str  # digest of the layer that wrote this version


@dataclass
class Filesystem:
    """The merged view of the wanted files after the layers applied so far."""

    files: dict[str, FileVersion] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    # Every version of each package database, oldest first (None: deleted by that layer).
    history: dict[str, list[tuple[str, bytes | None]]] = field(default_factory=dict)

    def remove(self, path: str, layer: str) -> None:
        """Remove ``path`` and everything below it (a whiteout, or an entry replacing it)."""
        prefix = path + "/"
        for table in (self.files, self.links):
            for key in [k for k in table if k == path or k.startswith(prefix)]:
                del table[key]
                if table is self.files and key in PACKAGE_DATABASES:
                    self.history.setdefault(key, []).append((layer, None))

    def resolve(self, path: str) -> str | None:
        """Follow symlinks as a chroot would: ``..`` and absolute targets stay inside the image."""
        parts, done, hops = [p for p in path.split("/") if p], [], 0
        while parts:
            part = parts.pop(0)
            if part in ("", "."):
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/".join([*done, part])
            target = self.links.get(candidate)
            if target is None:
                done.append(part)
                continue
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return None
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
        return "/".join(done)

    def read(self, path: str) -> FileVersion | None:
        real = self.resolve(path)
        return self.files.get(real) if real is not None else None

    def matching(self, predicate: Callable[[str], bool]) -> list[tuple[str, FileVersion]]:
        return sorted((p, v) for p, v in self.files.items() if predicate(p))


class _Budget:
    """Counts decompressed bytes across the whole image."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise ScanError(
                f"image layers decompress to more than {self.limit} bytes (possible decompression bomb)"
            )


class _Counted:
    """A read-only stream that charges every byte it yields to the budget."""

    def __init__(self, inner: BinaryIO, head: bytes, budget: _Budget) -> None:
        self.inner, self.head, self.budget = inner, head, budget

    def read(self, n: int = -1) -> bytes:
        if self.head:
            chunk = self.head if n < 0 else self.head[:n]
            self.head = self.head[len(chunk):]
            if n < 0:
                chunk += self.inner.read()
        else:
            chunk = self.inner.read(n)
        self.budget.spend(len(chunk))
        return chunk


class _Prefixed:
    """Replays the bytes read to sniff the format, then continues with the blob."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = head, rest

    def read(self, n: int = -1) -> bytes:
        if not self.head:
            return self.rest.read(n)
        if n < 0:
            out, self.head = self.head + self.rest.read(), b""
            return out
        out, self.head = self.head[:n], self.head[n:]
        return out


def _decompressed(blob: BinaryIO, budget: _Budget) -> _Counted:
    head = blob.read(512)
    source = _Prefixed(head, blob)
    if head.startswith(GZIP_MAGIC):
        return _Counted(gzip.GzipFile(fileobj=source), b"", budget)  # type: ignore[arg-type]
    if head.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            source, read_across_frames=True
        )
        return _Counted(reader, b"", budget)  # type: ignore[arg-type]
    if len(head) == 512 and (head[257:262] == b"ustar" or head == bytes(512)):
        return _Counted(blob, head, budget)
    if not head:
        raise ScanError("empty layer blob")
    raise ScanError("unsupported layer compression (not gzip, zstd or an uncompressed tar)")


def clean_path(name: str, layer: str) -> str:
    """The entry's path below the root; ScanError if ``..`` would climb out of it."""
    out: list[str] = []
    for part in name.replace("\\", "/").split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                raise ScanError(f"path traversal in layer {layer}: entry {name!r} leaves the image root")
            out.pop()
            continue
        out.append(part)
    return "/".join(out)


@dataclass
class _LayerChanges:
    deleted: list[str] = field(default_factory=list)  # whiteouts; "" means the whole root
    opaque: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    replaced: set[str] = field(default_factory=set)  # directories / other entries shadowing a path


def _read_layer(stream: _Counted, layer: str) -> _LayerChanges:
    changes = _LayerChanges()
    entries = 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            entries += 1
            if entries > MAX_ENTRIES_PER_LAYER:
                raise ScanError(f"layer {layer} has more than {MAX_ENTRIES_PER_LAYER} entries")
            path = clean_path(member.name, layer)
            head, _, base = path.rpartition("/")
            if base == ".wh..wh..opq":
                changes.opaque.append(head)
                continue
            if base.startswith(".wh."):
                changes.deleted.append(f"{head}/{base[4:]}" if head else base[4:])
                continue
            if member.issym():
                changes.links[path] = member.linkname
            elif member.islnk():
                target = clean_path(member.linkname, layer)
                if wanted(path) and target in changes.files:
                    changes.files[path] = changes.files[target]
            elif member.isreg() and wanted(path):
                if member.size > MAX_FILE_BYTES:
                    raise ScanError(f"{path} in layer {layer} is larger than {MAX_FILE_BYTES} bytes")
                handle = tar.extractfile(member)
                changes.files[path] = handle.read() if handle is not None else b""
            else:
                changes.replaced.add(path)
    return changes


def _apply(fs: Filesystem, changes: _LayerChanges, layer: str) -> None:
    """Whiteouts hide lower layers only; then this layer's own entries land on top."""
    for directory in changes.opaque:
        prefix = directory + "/" if directory else ""
        for key in [k for k in (*fs.files, *fs.links) if k.startswith(prefix) and k != directory]:
            fs.remove(key, layer)
    for path in changes.deleted:
        fs.remove(path, layer)
    for path in changes.replaced:  # a directory merges with the one below; it only replaces a file
        if path in fs.files or path in fs.links:
            fs.files.pop(path, None)
            fs.links.pop(path, None)
    for path, target in changes.links.items():
        fs.remove(path, layer)
        fs.links[path] = target
    for path, data in changes.files.items():
        fs.links.pop(path, None)
        fs.files[path] = FileVersion(data, layer)
        if path in PACKAGE_DATABASES:
            fs.history.setdefault(path, []).append((layer, data))


def apply_layers(layers: list[tuple[str, Callable[[], BinaryIO]]], max_unpacked: int) -> Filesystem:
    """Apply (digest, opener) layers bottom to top. Raises ScanError for anything unreadable."""
    fs, budget = Filesystem(), _Budget(max_unpacked)
    for digest, opener in layers:
        try:
            with opener() as blob:
                changes = _read_layer(_decompressed(blob, budget), digest)
        except ScanError:
            raise
        except FileNotFoundError as exc:
            raise ScanError(f"layer {digest} is not available in the registry") from exc
        except (tarfile.TarError, EOFError, OSError, zlib.error, zstandard.ZstdError, ValueError,
                UnicodeError) as exc:
            raise ScanError(f"layer {digest} is corrupt or not a tar archive ({exc})") from exc
        _apply(fs, changes, digest)
    return fs
