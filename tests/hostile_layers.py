"""Hostile image layers for the scanner's memory tests, written straight to disk.

Each builder streams a gzip'd (or zstd) tar into a file, so even layers that unpack to gigabytes
are built without holding them in memory. The content is what makes scanners blow up: huge or
numerous package metadata files, package databases rewritten by every layer, a million tar
entries, oversized tar headers, and package.json documents that are deep or huge.
``python -m tests.hostile_layers DIR`` writes them all (the scanner memory tests and the figures in
the report use the same builders).
"""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import zstandard

MiB = 1024 * 1024
SITE = "usr/local/lib/python3.11/site-packages"
OS_RELEASE = b'PRETTY_NAME="Ubuntu 22.04.1 LTS"\nNAME="Ubuntu"\nID=ubuntu\nVERSION_ID="22.04"\n'


class Repeat:
    """A read-only stream of ``size`` bytes: ``head`` then ``fill`` repeated (cut to size)."""

    def __init__(self, size: int, fill: bytes, head: bytes = b"", tail: bytes = b"") -> None:
        self.size, self.fill, self.data, self.tail, self.pos = size, fill, head, tail, 0
        self.body_end = size - len(tail)

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.pos if n < 0 else min(n, self.size - self.pos)
        out = bytearray()
        while len(out) < n:
            if self.pos >= self.body_end:
                start = self.pos - self.body_end
                piece = self.tail[start:start + n - len(out)]
            elif self.data:
                piece, self.data = self.data[:n - len(out)], self.data[n - len(out):]
            else:
                want = min(n - len(out), self.body_end - self.pos)
                reps = self.fill * (want // len(self.fill) + 1)
                piece = reps[:want]
            out += piece
            self.pos += len(piece)
        return bytes(out)


def entry(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.linkname, info.mode, info.mtime = size, kind, link, 0o644, 0
    return info


Item = tuple[tarfile.TarInfo, BinaryIO | None] | bytes
Entries = Iterator[Item]
_USTAR = tarfile.TarInfo("x")
_USTAR.mode, _USTAR.mtime = 0o644, 0
_TEMPLATE = bytearray(_USTAR.tobuf(format=tarfile.USTAR_FORMAT))
_TEMPLATE[0:100] = bytes(100)
_TEMPLATE[124:136] = bytes(12)
_TEMPLATE[148:157] = b" " * 8 + b"\0"
_TEMPLATE_SUM = sum(_TEMPLATE)
_MODE_TO_SIZE, _MTIME, _LINK_TO_END = bytes(_TEMPLATE[100:124]), bytes(_TEMPLATE[136:148]), bytes(_TEMPLATE[257:512])


def ustar(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    """One ustar entry (header, data, padding) built directly: millions of them in seconds."""
    raw_name, raw_link, size = name.encode(), link.encode(), b"%011o\0" % len(data)
    checksum = _TEMPLATE_SUM + sum(raw_name) + sum(raw_link) + sum(size) + kind[0]
    return b"".join((raw_name.ljust(100, b"\0"), _MODE_TO_SIZE, size, _MTIME, b"%06o\0 " % checksum, kind,
                     raw_link.ljust(100, b"\0"), _LINK_TO_END, data, bytes(-len(data) % 512)))


def write_tar(path: Path, entries: Entries, *, zstd: zstandard.ZstdCompressor | None = None) -> Path:
    """Stream ``entries`` into a compressed tar at ``path`` (gzip level 1, or the zstd compressor)."""
    with open(path, "wb") as raw:
        if zstd is not None:
            sink: BinaryIO = zstd.stream_writer(raw, closefd=False)  # type: ignore[assignment]
        else:
            sink = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0)  # type: ignore[assignment]
        with sink:
            pending = bytearray()
            for item in entries:
                if isinstance(item, bytes):
                    pending += item
                else:
                    info, data = item
                    pending += info.tobuf(format=tarfile.PAX_FORMAT)
                    sink.write(pending)
                    pending = bytearray()
                    copied = 0
                    while data is not None and (chunk := data.read(MiB)):
                        sink.write(chunk)
                        copied += len(chunk)
                    assert copied == (info.size if data is not None else 0)
                    pending += bytes(-copied % 512)
                if len(pending) > MiB:
                    sink.write(pending)
                    pending = bytearray()
            sink.write(bytes(pending) + bytes(1024))
    return path


def small(name: str, data: bytes) -> tuple[tarfile.TarInfo, BinaryIO]:
    return entry(name, len(data)), io.BytesIO(data)


def metadata(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name}\n\n".encode()


def dpkg_stanza(i: int, version: str, description_lines: int = 12) -> bytes:
    """A stanza shaped like a real Ubuntu one (about 1.3 KB)."""
    lines = [f"Package: lib{i:06d}", "Status: install ok installed", "Priority: optional", "Section: libs",
             "Installed-Size: 1234", "Maintainer: Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>",
             "Architecture: amd64", "Multi-Arch: same", f"Source: src{i // 3:06d}", f"Version: {version}",
             "Depends: libc6 (>= 2.34), libgcc-s1 (>= 3.0), libstdc++6 (>= 12), zlib1g (>= 1:1.2.0)",
             f"Description: library number {i}"]
    lines += [" This is a long description line, wrapped the way dpkg wraps them for display."] * description_lines
    return ("\n".join(lines) + "\n\n").encode()


def dpkg_status(size: int, generation: int = 0) -> bytes:
    out, i = bytearray(), 0
    while len(out) < size:
        out += dpkg_stanza(i, f"1.{generation}.{i}-1ubuntu1")
        i += 1
    return bytes(out)


# --- the hostile layers ---------------------------------------------------------------------------

def metadata_60mib(d: Path) -> list[Path]:
    """One METADATA whose description (after the header block) is 60 MiB."""
    head = metadata("pip", "23.1.2")
    body = Repeat(60 * MiB, b"A very long project description, repeated to fill sixty mebibytes.\n", head)
    return [write_tar(d / "meta60.tgz", iter([
        small("etc/os-release", OS_RELEASE),
        (entry(f"{SITE}/pip-23.1.2.dist-info/METADATA", body.size), body)]))]


def metadata_1000x1mib(d: Path) -> list[Path]:
    """1,000 METADATA files of 1 MiB each (a short header block, then the description)."""
    def entries() -> Entries:
        yield small("etc/os-release", OS_RELEASE)
        for i in range(1000):
            body = Repeat(MiB, b"Description text, repeated to fill one mebibyte per package.\n",
                          metadata(f"pkg{i}", "1.0"))
            yield entry(f"{SITE}/pkg{i}-1.0.dist-info/METADATA", body.size), body
    return [write_tar(d / "meta1000.tgz", entries())]


def million_entries(d: Path) -> list[Path]:
    """A million empty files: tarfile's stream mode kept a TarInfo for each."""
    def entries() -> Entries:
        yield small("etc/os-release", OS_RELEASE)
        for i in range(1_000_000):
            yield ustar(f"data/{i // 1000:03d}/{i:07d}")
    return [write_tar(d / "million.tgz", entries())]


def symlinks_500k(d: Path) -> list[Path]:
    """500,000 symlinks: each is kept (they resolve os-release and package databases)."""
    def entries() -> Entries:
        yield small("etc/os-release", OS_RELEASE)
        for i in range(500_000):
            yield ustar(f"links/{i // 1000:03d}/{i:07d}", kind=tarfile.SYMTYPE, link=f"../../target/{i:07d}")
    return [write_tar(d / "symlinks.tgz", entries())]


def many_vulnerable_metadata(d: Path) -> list[Path]:
    """50,000 virtualenvs with a vulnerable pip each: every METADATA is kept as a record."""
    meta = metadata("pip", "23.1.2")
    def entries() -> Entries:
        yield small("etc/os-release", OS_RELEASE)
        for i in range(50_000):
            yield ustar(f"venv/{i:06d}/{SITE}/pip-23.1.2.dist-info/METADATA", meta)
    return [write_tar(d / "manypip.tgz", entries())]


def dpkg_60mib(d: Path) -> list[Path]:
    status = dpkg_status(60 * MiB)
    return [write_tar(d / "dpkg60.tgz", iter([small("etc/os-release", OS_RELEASE),
                                               small("var/lib/dpkg/status", status)]))]


def dpkg_tiny_stanzas(d: Path) -> list[Path]:
    """A 30 MiB status made of the smallest stanzas dpkg would accept: a million packages."""
    status = b"".join(b"Package: p%07d\nVersion: 1\n\n" % i for i in range(30 * MiB // 29))
    return [write_tar(d / "dpkgtiny.tgz", iter([small("etc/os-release", OS_RELEASE),
                                                 small("var/lib/dpkg/status", status)]))]


def dpkg_one_stanza(d: Path) -> list[Path]:
    """A 30 MiB status that is one stanza: the Package field repeated 2.6 million times."""
    status = b"Package: p\n" * (30 * MiB // 11) + b"Version: 1\n"
    return [write_tar(d / "dpkgone.tgz", iter([small("etc/os-release", OS_RELEASE),
                                                small("var/lib/dpkg/status", status)]))]


def status_d_1gib(d: Path) -> list[Path]:
    """34 distroless-style status.d files of 31 MiB each: over a gigabyte of package databases."""
    def entries() -> Entries:
        yield small("etc/os-release", OS_RELEASE)
        for i in range(34):
            body = Repeat(31 * MiB, b"x" * 4096)
            yield entry(f"var/lib/dpkg/status.d/p{i}", body.size), body
    return [write_tar(d / "statusd.tgz", entries())]


def dpkg_20x10mib(d: Path) -> list[Path]:
    """20 layers, each rewriting a 10 MiB dpkg status (every version changes)."""
    out = []
    for layer in range(20):
        files = [small("var/lib/dpkg/status", dpkg_status(10 * MiB, layer))]
        if layer == 0:
            files.insert(0, small("etc/os-release", OS_RELEASE))
        out.append(write_tar(d / f"dpkg20-{layer:02d}.tgz", iter(files)))
    return out


def npm_deep(d: Path) -> list[Path]:
    """package.json documents nested 90,000 levels deep (arrays, then objects)."""
    depth = 90_000
    arrays = b"[" * depth + b"]" * depth
    objects = b'{"a":' * depth + b"1" + b"}" * depth
    return [write_tar(d / "npmdeep.tgz", iter([
        small("etc/os-release", OS_RELEASE),
        small("app/node_modules/deep-a/package.json", arrays),
        small("app/node_modules/deep-o/package.json", objects),
        small("app/node_modules/ip/package.json", b'{"name": "ip", "version": "1.1.8"}')]))]


def npm_huge(d: Path) -> list[Path]:
    """A 60 MiB package.json: the name and version, then a huge readme string."""
    head, tail = b'{"name": "ip", "version": "1.1.8", "readme": "', b'"}'
    body = Repeat(60 * MiB, b"readme text ", head, tail)
    return [write_tar(d / "npmhuge.tgz", iter([
        small("etc/os-release", OS_RELEASE),
        (entry("app/node_modules/ip/package.json", body.size), body)]))]


def npm_wide(d: Path) -> list[Path]:
    """A 3.9 MiB package.json of empty arrays: a million lists from a small file."""
    body = b'{"name": "ip", "version": "1.1.8", "x": [' + b"[]," * (39 * MiB // 30) + b"[]]}"
    return [write_tar(d / "npmwide.tgz", iter([
        small("etc/os-release", OS_RELEASE), small("app/node_modules/ip/package.json", body)]))]


def pax_header_512mib(d: Path) -> list[Path]:
    """A pax extended header of 512 MiB in front of an ordinary file."""
    record_len = 512 * MiB
    value_len = record_len - len(f"{record_len} comment=\n")
    header = f"{record_len} comment=".encode()
    body = Repeat(record_len, b"x", header, b"\n")
    pax = entry("././@PaxHeader", record_len, tarfile.XHDTYPE)
    assert value_len > 0
    return [write_tar(d / "pax.tgz", iter([
        small("etc/os-release", OS_RELEASE), (pax, body), small("data/after-the-header", b"x")]))]


def gnu_longname_512mib(d: Path) -> list[Path]:
    """A GNU long-name header of 512 MiB."""
    body = Repeat(512 * MiB, b"n", b"", b"\0")
    return [write_tar(d / "longname.tgz", iter([
        small("etc/os-release", OS_RELEASE), (entry("././@LongLink", body.size, tarfile.GNUTYPE_LONGNAME), body),
        small("data/after-the-header", b"x")]))]


def _checksummed(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def gnu_sparse_map(d: Path) -> list[Path]:
    """A GNU sparse file whose map runs over 200,000 extension blocks (4.2 million extents)."""
    header = bytearray(ustar("data/sparse", kind=tarfile.GNUTYPE_SPARSE))
    header[482] = 1  # isextended: an extension block follows
    extent = b"%011o\0%011o\0" % (1, 1)
    more, last = extent * 21 + b"\x01" + bytes(7), extent * 21 + bytes(8)
    def entries() -> Entries:
        yield small("etc/os-release", OS_RELEASE)
        yield _checksummed(header)
        for _ in range(200):
            yield more * 1000
        yield last
    return [write_tar(d / "sparse.tgz", entries())]


def pax_global_headers(d: Path) -> list[Path]:
    """20 global pax headers of 600 KB, each with new keys: tarfile merges them all into one dict."""
    def entries() -> Entries:
        yield small("etc/os-release", OS_RELEASE)
        for n in range(20):
            records = b"".join(b"14 k%07d=v\n" % (n * 50_000 + i) for i in range(43_000))
            yield entry("pax_global_header", len(records), tarfile.XGLTYPE), io.BytesIO(records)
            yield small(f"data/{n}", b"x")
    return [write_tar(d / "paxglobal.tgz", entries())]


def long_path(d: Path) -> list[Path]:
    """An entry whose path (a pax record) is 5,000 characters long."""
    return [write_tar(d / "longpath.tgz", iter([small("etc/os-release", OS_RELEASE),
                                                 small("a/" * 2500 + "f", b"x")]))]


def many_whiteouts(d: Path) -> list[Path]:
    """20,000 package.json files, then a layer of 200,000 whiteouts, the last 20,000 removing those.

    Each whiteout looked at every kept path before: 3.6 billion comparisons."""
    def lower() -> Entries:
        yield small("etc/os-release", OS_RELEASE)
        for i in range(20_000):
            yield ustar(f"app/node_modules/p{i}/package.json", b'{"name": "p%d", "version": "1.0.0"}' % i)
    def upper() -> Entries:
        for i in range(200_000):
            yield ustar(f"app/node_modules/.wh.p{i - 180_000}" if i >= 180_000 else f"gone/{i // 1000:03d}/.wh.{i:07d}")
    return [write_tar(d / "wh-lower.tgz", lower()), write_tar(d / "wh-upper.tgz", upper())]


def findings(count: int) -> Callable[[Path], list[Path]]:
    def build(d: Path) -> list[Path]:
        """``count`` vulnerable pips side by side in one site-packages: a finding each."""
        meta = metadata("pip", "23.1.2")
        def entries() -> Entries:
            yield small("etc/os-release", OS_RELEASE)
            for i in range(count):
                yield ustar(f"{SITE}/pip{i}-23.1.2.dist-info/METADATA", meta)
        return [write_tar(d / "pips.tgz", entries())]
    return build


def zstd_window(window_log: int) -> Callable[[Path], list[Path]]:
    def build(d: Path) -> list[Path]:
        """A zstd layer compressed with a 2**window_log window (zstd --long) holding 200 MiB of data."""
        params = zstandard.ZstdCompressionParameters.from_level(3, window_log=window_log, enable_ldm=True)
        body = Repeat(200 * MiB, bytes(range(256)) * 8)
        return [write_tar(d / "zstd.tzst", iter([small("etc/os-release", OS_RELEASE),
                                                  (entry("data/blob", body.size), body)]),
                          zstd=zstandard.ZstdCompressor(compression_params=params))]
    return build


def worst_together(d: Path) -> list[Path]:
    """115,000 packages kept (near the memory budget), then a layer needing a 64 MiB zstd window."""
    return findings(115_000)(d) + zstd_window(26)(d)


CASES: dict[str, Callable[[Path], list[Path]]] = {
    "metadata-60mib": metadata_60mib,
    "metadata-1000x1mib": metadata_1000x1mib,
    "million-entries": million_entries,
    "symlinks-500k": symlinks_500k,
    "many-vulnerable-metadata": many_vulnerable_metadata,
    "dpkg-60mib": dpkg_60mib,
    "dpkg-tiny-stanzas": dpkg_tiny_stanzas,
    "dpkg-one-stanza": dpkg_one_stanza,
    "status-d-1gib": status_d_1gib,
    "dpkg-20x10mib": dpkg_20x10mib,
    "npm-deep": npm_deep,
    "npm-huge": npm_huge,
    "npm-wide": npm_wide,
    "pax-header-512mib": pax_header_512mib,
    "gnu-longname-512mib": gnu_longname_512mib,
    "gnu-sparse-map": gnu_sparse_map,
    "pax-global-headers": pax_global_headers,
    "long-path": long_path,
    "many-whiteouts": many_whiteouts,
    "findings-45k": findings(45_000),
    "findings-70k": findings(70_000),
    "zstd-window-64mib": zstd_window(26),
    "zstd-window-128mib": zstd_window(27),
    "worst-together": worst_together,
}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for name in sys.argv[2:] or CASES:
        (out / name).mkdir(parents=True, exist_ok=True)
        paths = CASES[name](out / name)
        print(name, *(f"{p.name}={p.stat().st_size}" for p in paths))
