"""Applying an image's layers in order, in memory, keeping only what the scanner reads.

Nothing is ever extracted to disk: each layer is streamed (gzip, zstd or plain tar, recognised
by its magic bytes, whatever the media type claims) and each wanted file is read as it streams
past (``packages``) and kept as its package records. OCI whiteouts (``.wh.<name>`` and the opaque
``.wh..wh..opq``) remove what lower layers put there. The limits in ``limits`` are enforced as
the stream goes: a decompression bomb, oversized tar headers, a file over its kind's limit or
more records than the memory budget end the scan as FAILED with that reason, and so does an
entry that climbs out of the root with ``..``.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard

from ecr_emulator.core.scanning import packages
from ecr_emulator.core.scanning.filesystem import Filesystem, FileVersion
from ecr_emulator.core.scanning.limits import (
    COST,
    ENTRIES_PER_LAYER,
    HEADER_MAX,
    PATH_MAX,
    ZSTD_MAX_WINDOW,
    Budget,
    ScanError,
    read_budget,
    size,
    unpacked_budget,
)

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_AHEAD = 64 * 1024  # tarfile's stream reader reads ahead of the entry it is on by up to 10 KiB

__all__ = ["Filesystem", "FileVersion", "ScanError", "apply_layers", "clean_path"]


class _Stream:
    """The decompressed layer as tarfile reads it: charges every byte to the image's unpacked
    budget, and fails once tarfile reads more than HEADER_MAX of headers past the end of the
    last entry's data (pax records, GNU long names and sparse maps are read into memory whole)."""

    def __init__(self, inner: BinaryIO, head: bytes, budget: Budget, layer: str) -> None:
        self.inner, self.head, self.budget, self.layer = inner, head, budget, layer
        self.pos, self.until = 0, HEADER_MAX + READ_AHEAD

    def allow_headers_after(self, offset: int) -> None:
        self.until = offset + HEADER_MAX + READ_AHEAD

    def read(self, n: int) -> bytes:  # tarfile's stream reader always asks for a size
        if self.head:
            chunk, self.head = self.head[:n], self.head[n:]
        else:
            chunk = self.inner.read(n)
        self.pos += len(chunk)
        if self.pos > self.until:
            raise ScanError(f"layer {self.layer} has tar headers larger than {size(HEADER_MAX)} before one "
                            "entry (the scanner's limit for pax headers, long names and sparse maps)")
        self.budget.spend(len(chunk))
        return chunk


class _Replay:
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


def _decompressed(blob: BinaryIO, budget: Budget, layer: str) -> _Stream:
    head = blob.read(512)
    source = _Replay(head, blob)
    if head.startswith(GZIP_MAGIC):
        return _Stream(gzip.GzipFile(fileobj=source), b"", budget, layer)  # type: ignore[arg-type]
    if head.startswith(ZSTD_MAGIC):
        window = zstandard.get_frame_parameters(head).window_size
        if window > ZSTD_MAX_WINDOW:
            raise ScanError(f"layer {layer} needs a zstd window of {size(window)}, more than {size(ZSTD_MAX_WINDOW)} "
                            "(the scanner's limit; standard zstd levels use 8 MiB)")
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            source, read_across_frames=True
        )
        return _Stream(reader, b"", budget, layer)  # type: ignore[arg-type]
    if len(head) == 512 and (head[257:262] == b"ustar" or head == bytes(512)):
        return _Stream(blob, head, budget, layer)
    if not head:
        raise ScanError("empty layer blob")
    raise ScanError("unsupported layer compression (not gzip, zstd or an uncompressed tar)")


def clean_path(name: str, layer: str) -> str:
    """The entry's path below the root; ScanError if ``..`` would climb out of it."""
    if len(name) > PATH_MAX:
        raise ScanError(f"layer {layer} has an entry whose path is longer than {PATH_MAX} characters "
                        "(Linux's PATH_MAX, the scanner's limit)")
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
class _Layer:
    """One layer's own files and symlinks, landed on the filesystem once the layer is read (its
    whiteouts apply to lower layers only, so they are applied as they stream past)."""

    fs: Filesystem
    layer: str
    files: dict[str, FileVersion] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def forget(self, path: str) -> None:
        """A later entry for the same path replaces an earlier one."""
        version = self.files.pop(path, None)
        if version is not None:
            self.fs.retained.release(COST["file"] + len(path) + version.cost)
        target = self.links.pop(path, None)
        if target is not None:
            self.fs.retained.release(COST["link"] + len(path) + len(target))

    def read_file(self, path: str, kind: packages.Kind, member: tarfile.TarInfo, handle: BinaryIO) -> None:
        value, cost = packages.read(kind, handle, member.size, path, self.layer, self.fs.retained)
        self.put_file(path, FileVersion(value, self.layer, cost))

    def put_file(self, path: str, version: FileVersion) -> None:
        self.fs.retained.spend(COST["file"] + len(path))
        self.files[path] = version

    def put_link(self, path: str, target: str) -> None:
        self.fs.retained.spend(COST["link"] + len(path) + len(target))
        self.links[path] = target

    def land(self) -> None:
        for path, target in self.links.items():
            self.fs.put_link(path, target)
        for path, version in self.files.items():
            self.fs.put_file(path, version)


def _global_headers_size(tar: tarfile.TarFile) -> int:
    return sum(len(k) + len(v) for k, v in tar.pax_headers.items())


def _linked(changes: _Layer, member: tarfile.TarInfo, layer: str) -> FileVersion | None:
    """The version a hard link shares, when it links to a wanted file of the same layer."""
    return changes.files.get(clean_path(member.linkname, layer))


def _read_layer(stream: _Stream, layer: str, fs: Filesystem, read: Budget) -> None:
    changes = _Layer(fs, layer)
    entries, globals_seen = 0, 0
    with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
        while (member := tar.next()) is not None:
            tar.members.clear()  # stream mode keeps every entry otherwise: a million is gigabytes
            stream.allow_headers_after(tar.offset)
            if len(tar.pax_headers) != globals_seen:  # global pax headers accumulate across entries
                globals_seen = len(tar.pax_headers)
                if _global_headers_size(tar) > HEADER_MAX:
                    raise ScanError(f"layer {layer} has global pax headers larger than {size(HEADER_MAX)} "
                                    "(the scanner's limit)")
            entries += 1
            if entries > ENTRIES_PER_LAYER:
                raise ScanError(f"layer {layer} has more than {ENTRIES_PER_LAYER} entries (the scanner's limit)")
            path = clean_path(member.name, layer)
            head, _, base = path.rpartition("/")
            if base == ".wh..wh..opq":
                fs.remove_below(head)
                continue
            if base.startswith(".wh."):
                fs.remove(f"{head}/{base[4:]}" if head else base[4:])
                continue
            changes.forget(path)
            kind = packages.kind_of(path)
            if member.issym():
                fs.remove(path)
                changes.put_link(path, member.linkname)
            elif member.islnk() and kind is not None and (same := _linked(changes, member, layer)) is not None:
                fs.remove(path)
                changes.fs.retained.spend(same.cost)  # charged again: the versions may part ways
                changes.put_file(path, FileVersion(same.value, layer, same.cost))
            elif member.isreg() and kind is not None:
                fs.remove(path)
                read.spend(min(member.size, kind.most))
                changes.read_file(path, kind, member, tar.extractfile(member))  # type: ignore[arg-type]
            elif member.isdir():
                fs.drop(path)  # a directory merges with the one below; it only replaces a file
            else:
                fs.remove(path)
    changes.land()


def apply_layers(layers: list[tuple[str, Callable[[], BinaryIO]]], max_unpacked: int) -> Filesystem:
    """Apply (digest, opener) layers bottom to top. Raises ScanError for anything unreadable."""
    fs, unpacked, read = Filesystem(), unpacked_budget(max_unpacked), read_budget()
    for digest, opener in layers:
        try:
            with opener() as blob:
                _read_layer(_decompressed(blob, unpacked, digest), digest, fs, read)
        except ScanError:
            raise
        except FileNotFoundError as exc:
            raise ScanError(f"layer {digest} is not available in the registry") from exc
        except (tarfile.TarError, EOFError, OSError, zlib.error, zstandard.ZstdError, ValueError,
                UnicodeError, RecursionError) as exc:
            raise ScanError(f"layer {digest} is corrupt or not a tar archive ({exc})") from exc
    return fs
