"""The scanner's limits, and the error that ends a scan which exceeds one of them.

A scan holds little whatever the image is: layers are streamed, each wanted file is read only as
far as the scanner needs it and parsed as it streams past, and what the scan keeps (package
records, symlinks, the layer that introduced each package) is charged to a per-scan memory
budget. Every limit below is far above what real images need (a dpkg ``status`` runs about 1 KB
per package: 0.7 MB for a 750-package Debian 12, a few MB for a large Ubuntu image; a METADATA
header block or a package.json is a few KB) and fails the scan as FAILED with a reason naming it,
never a crash or an out-of-memory kill. Together they keep a scan's peak memory growth under
256 MiB (tests/test_scanning_memory.py measures it).
"""

from __future__ import annotations

KiB = 1024
MiB = 1024 * KiB

# How much of each kind of wanted file is read.
TEXT_PREFIX = 64 * KiB  # os-release, debian_version, alpine-release: only the first 64 KiB
METADATA_HEADER = 64 * KiB  # Python METADATA / PKG-INFO: the header block, at most this much of it
DATABASE_MAX = 32 * MiB  # dpkg status and status.d stanzas, apk installed: larger fails the scan
PACKAGE_JSON_MAX = 4 * MiB  # npm package.json: larger fails the scan
PACKAGE_JSON_VALUES = 200_000  # ...and so does one with more JSON values than this
LINE_MAX = 64 * KiB  # a package database line longer than this holds no field the scanner reads

# Per layer and per image.
ENTRIES_PER_LAYER = 2_000_000
PATH_MAX = 4096  # Linux's PATH_MAX: a longer entry path cannot be extracted by any runtime
HEADER_MAX = 1 * MiB  # tar headers before one entry: pax records, GNU long names, sparse maps
READ_MAX = 1024 * MiB  # bytes of wanted files read across the image, every version (parsing work)
RETAINED_MAX = 96 * MiB  # what the scan keeps, as estimated by ``Budget`` charges (see ``COST``)
MAX_FINDINGS = 50_000  # findings of one scan, each a stored row (real images: a few thousand at most)
ZSTD_MAX_WINDOW = 64 * MiB  # standard zstd levels use 8 MiB; only --long/--ultra go beyond
SYMLINK_HOPS = 40

# Estimated bytes of Python memory per kept object, beyond the lengths of its strings (measured
# with tracemalloc on CPython 3.11, rounded up).
COST = {"package": 400, "file": 300, "link": 300, "introduced": 250}


class ScanError(Exception):
    """The image cannot be scanned; the message becomes the FAILED status description."""


def size(n: int) -> str:
    """``64 MiB``, ``4096 bytes``: how a limit is named in a failure reason."""
    for unit, scale in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


class Budget:
    """A count that fails the scan with ``message`` once it passes ``limit``.

    ``release`` gives back what is no longer kept, so the count is what is held at the moment,
    and the limit bounds the peak.
    """

    def __init__(self, limit: int, message: str) -> None:
        self.limit, self.message, self.used = limit, message, 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise ScanError(self.message.format(limit=size(self.limit)))

    def release(self, n: int) -> None:
        self.used -= n


def unpacked_budget(limit: int) -> Budget:
    return Budget(limit, "image layers decompress to more than {limit} (possible decompression bomb)")


def read_budget() -> Budget:
    return Budget(READ_MAX, "the image's package metadata files add up to more than {limit} "
                            "(the scanner's read limit)")


def retained_budget() -> Budget:
    return Budget(RETAINED_MAX, "the image's package records, symlinks and package history need more than "
                                "{limit} of scanner memory (the scanner's memory limit)")
