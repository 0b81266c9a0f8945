"""The files the scanner reads, and how it reads each as it streams past: only what it needs.

OS packages come from the package manager's own database: dpkg's ``status`` (and the
``status.d`` stanzas distroless images use) for Debian and Ubuntu, apk's ``installed`` for Alpine.
Advisories name the *source* package (dpkg ``Source:``, apk origin), so each package keeps both
names. Language packages come from Python ``*.dist-info/METADATA`` and ``*.egg-info`` and from
``node_modules/<name>/package.json``. A record that cannot be parsed is left out, not guessed at.

Nothing is held whole: package databases are parsed line by line (python-debian's Deb822 sees only
the fields used), a METADATA file is read up to the end of its header block (its description
can be megabytes), os-release only in its first kilobytes. A package.json is parsed whole, so it
has a size limit; so do the databases (see ``limits``). What is kept of a file is its records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.parser import HeaderParser
from typing import BinaryIO

from debian.deb822 import Deb822

from ecr_emulator.core.scanning.limits import (
    COST,
    DATABASE_MAX,
    LINE_MAX,
    METADATA_HEADER,
    PACKAGE_JSON_MAX,
    PACKAGE_JSON_VALUES,
    TEXT_PREFIX,
    Budget,
    ScanError,
    size,
)
from ecr_emulator.core.vulndb.osv import normalize_package

DPKG_STATUS = "var/lib/dpkg/status"
APK_INSTALLED = "lib/apk/db/installed"
PACKAGE_DATABASES = (DPKG_STATUS, APK_INSTALLED)  # every version of these matters (see layers)
TEXT_FILES = ("etc/os-release", "usr/lib/os-release", "etc/debian_version", "etc/alpine-release")
DPKG_STANZAS = re.compile(r"var/lib/dpkg/status\.d/[^/]+")
PYTHON_METADATA = re.compile(r"(?:.*/)?[^/]+\.(?:dist-info/METADATA|egg-info(?:/PKG-INFO)?)")
NPM_PACKAGE = re.compile(r"(?:.*/)?node_modules/(?:@[^/]+/)?[^/]+/package\.json")
MAX_NAME = 255
Keep = Callable[[list["Package"], "Package"], list["Package"]]  # appends a record, charging the budget
DPKG_FIELDS = frozenset({b"package", b"version", b"status", b"source", b"architecture"})
APK_FIELDS = frozenset({"P", "V", "A", "o"})


@dataclass(slots=True)
class Package:
    name: str  # as installed (dpkg binary package, apk package, distribution name)
    version: str
    kind: str  # dpkg | apk | python | npm
    source_name: str  # the name advisories use
    source_version: str
    arch: str | None
    layer: str | None  # digest of the layer that introduced it
    path: str  # the file it was read from, below the image root

    def cost(self) -> int:
        """Estimated bytes this record holds (for the scan's memory budget)."""
        return COST["package"] + len(self.name) + len(self.version) + len(self.source_name) + len(self.source_version)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """The stream's lines; None for a line longer than LINE_MAX (read past, never held)."""
    while line := stream.readline(LINE_MAX):
        if len(line) == LINE_MAX and not line.endswith(b"\n"):
            while (rest := stream.readline(LINE_MAX)) and not rest.endswith(b"\n"):
                pass
            yield None
            continue
        yield line


def _split_source(field_value: str | None, name: str, version: str) -> tuple[str, str]:
    """dpkg ``Source: openssl (3.0.2-0ubuntu1.7)`` -> the source name and version."""
    if not field_value:
        return name, version
    m = re.fullmatch(r"\s*(\S+)(?:\s+\(([^)]+)\))?\s*", field_value)
    if not m:
        return name, version
    return m.group(1), m.group(2) or version


def _dpkg_lines(stream: BinaryIO) -> Iterator[str]:
    """The lines Deb822 needs: the first line of each field read (all single-line in dpkg's format)
    and the stanza breaks. A stanza is at most five lines, however the file repeats a field."""
    seen: set[bytes] = set()
    for line in _lines(stream):
        if line is None or line[:1] in (b" ", b"\t"):
            continue
        if not line.strip():
            seen.clear()
            yield "\n"
            continue
        key = line.partition(b":")[0].strip().lower()
        if key in DPKG_FIELDS and key not in seen:
            seen.add(key)
            yield _text(line)


def parse_dpkg(stream: BinaryIO, path: str, layer: str | None, keep: Keep) -> list[Package]:
    out: list[Package] = []
    for para in Deb822.iter_paragraphs(_dpkg_lines(stream)):
        name, version = para.get("Package"), para.get("Version")
        status = para.get("Status", "install ok installed")
        if not name or not version or not status.endswith(" installed"):
            continue
        source, source_version = _split_source(para.get("Source"), name, version)
        keep(out, Package(name, version, "dpkg", source, source_version, para.get("Architecture"), layer, path))
    return out


def parse_apk(stream: BinaryIO, path: str, layer: str | None, keep: Keep) -> list[Package]:
    out: list[Package] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        name, version = fields.get("P"), fields.get("V")
        if name and version:
            origin = fields.get("o") or name
            keep(out, Package(name, version, "apk", origin, version, fields.get("A"), layer, path))
        fields.clear()

    for line in _lines(stream):
        if line is None:
            continue
        text = _text(line).rstrip("\r\n")
        if not text.strip():
            flush()
            continue
        key, sep, value = text.partition(":")
        if sep and key in APK_FIELDS and key not in fields:
            fields[key] = value
    flush()
    return out


def parse_python(stream: BinaryIO, path: str, layer: str | None, keep: Keep) -> list[Package]:
    """Name and Version from the header block; the description after it is never read."""
    head = stream.read(METADATA_HEADER)
    end = re.search(rb"\r?\n\r?\n", head)
    headers = HeaderParser().parsestr(_text(head[: end.start() + 1] if end else head))
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version or len(name) > MAX_NAME:
        return []
    name, version = name.strip(), version.strip()
    return keep([], Package(name, version, "python", normalize_package("PyPI", name), version, None, layer, path))


def parse_npm(stream: BinaryIO, path: str, layer: str | None, keep: Keep) -> list[Package]:
    data = stream.read(PACKAGE_JSON_MAX + 1)
    # json.loads builds every value: a few megabytes of "[[],[],...]" would be hundreds of MiB.
    values = sum(data.count(c) for c in (b",", b"[", b"{", b":"))
    if values > PACKAGE_JSON_VALUES:
        raise ScanError(f"{path} in layer {layer} holds more than {PACKAGE_JSON_VALUES} JSON values "
                        "(the scanner's limit for package.json)")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []
    if not isinstance(doc, dict):
        return []
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or len(name) > MAX_NAME:
        return []
    try:
        (name + version).encode()
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") is valid JSON but no package name
        return []
    return keep([], Package(name, version, "npm", name, version, None, layer, path))


def read_text(stream: BinaryIO, path: str, layer: str | None, keep: Keep) -> bytes:
    return stream.read(TEXT_PREFIX)


@dataclass(frozen=True)
class Kind:
    """A kind of wanted file: how it is read, the most read of one, and whether a larger one fails."""

    name: str
    read: Callable[[BinaryIO, str, str | None, Keep], list[Package] | bytes]
    most: int
    whole: bool  # True: read whole, a larger file fails the scan; False: only a prefix is read


TEXT = Kind("os-release", read_text, TEXT_PREFIX, whole=False)
DPKG = Kind("package databases", parse_dpkg, DATABASE_MAX, whole=True)
APK = Kind("package databases", parse_apk, DATABASE_MAX, whole=True)
PYTHON = Kind("Python metadata", parse_python, METADATA_HEADER, whole=False)
NPM = Kind("package.json", parse_npm, PACKAGE_JSON_MAX, whole=True)
EXACT = {**dict.fromkeys(TEXT_FILES, TEXT), DPKG_STATUS: DPKG, APK_INSTALLED: APK}
BY_GROUP = {"dpkg": DPKG, "python": PYTHON, "npm": NPM}
WANTED = re.compile("|".join(f"(?P<{group}>{pattern.pattern})" for group, pattern in
                             (("dpkg", DPKG_STANZAS), ("python", PYTHON_METADATA), ("npm", NPM_PACKAGE))))


def kind_of(path: str) -> Kind | None:
    """The kind of a wanted file; None for every file the scanner does not read (one regex match)."""
    found = EXACT.get(path)
    if found is not None:
        return found
    m = WANTED.fullmatch(path)
    return BY_GROUP[m.lastgroup] if m is not None and m.lastgroup else None


def read(kind: Kind, stream: BinaryIO, file_size: int, path: str, layer: str,
         budget: Budget) -> tuple[list[Package] | bytes, int]:
    """Read one wanted file as it streams past: what is kept of it, and its estimated cost, charged
    to ``budget`` record by record. ScanError if it is larger than its kind allows."""
    if kind.whole and file_size > kind.most:
        raise ScanError(f"{path} in layer {layer} is larger than {size(kind.most)} "
                        f"(the scanner's limit for {kind.name})")
    before = budget.used

    def keep(records: list[Package], pkg: Package) -> list[Package]:
        budget.spend(pkg.cost() + 8)
        records.append(pkg)
        return records

    value = kind.read(stream, path, layer, keep)
    if isinstance(value, bytes):
        budget.spend(len(value))
    return value, budget.used - before
