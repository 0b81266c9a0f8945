"""What is installed in an image: its OS (from os-release) and its packages, each with the layer
that introduced it.

OS packages come from the package manager's own database: dpkg's ``status`` (and the
``status.d`` stanzas distroless images use) for Debian and Ubuntu, apk's ``installed`` for Alpine.
Advisories name the *source* package (dpkg ``Source:``, apk origin), so each package keeps both
names. Language packages come from Python ``*.dist-info/METADATA`` and ``*.egg-info`` and from
``node_modules/<name>/package.json``. A record that cannot be parsed is left out, not guessed at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from email.parser import HeaderParser

from debian.deb822 import Deb822

from ecr_emulator.core.scanning.layers import WANTED_PATTERN, Filesystem
from ecr_emulator.core.vulndb.osv import normalize_package

SUPPORTED_OS = ("debian", "ubuntu", "alpine")
DPKG_STATUS = "var/lib/dpkg/status"
APK_INSTALLED = "lib/apk/db/installed"
PYTHON_METADATA = re.compile(r"(?:.*/)?[^/]+\.(?:dist-info/METADATA|egg-info(?:/PKG-INFO)?)")
NPM_PACKAGE = re.compile(r"(?:.*/)?node_modules/(?:@[^/]+/)?[^/]+/package\.json")
MAX_NAME = 255


@dataclass
class Package:
    name: str  # as installed (dpkg binary package, apk package, distribution name)
    version: str
    kind: str  # dpkg | apk | python | npm
    source_name: str  # the name advisories use
    source_version: str
    arch: str | None
    layer: str | None  # digest of the layer that introduced it
    path: str  # the file it was read from, below the image root


@dataclass
class OperatingSystem:
    id: str
    version_id: str
    pretty_name: str

    @property
    def supported(self) -> bool:
        return self.id in SUPPORTED_OS and bool(self.ecosystems)

    @property
    def ecosystems(self) -> list[str]:
        """The OSV ecosystems whose advisories apply to this release."""
        if self.id == "debian" and self.version_id:
            return [f"Debian:{self.version_id.split('.')[0]}"]
        if self.id == "ubuntu" and self.version_id:
            return [f"Ubuntu:{self.version_id}:LTS", f"Ubuntu:{self.version_id}"]
        if self.id == "alpine" and self.version_id:
            return ["Alpine:v" + ".".join(self.version_id.split(".")[:2])]
        return []

    @property
    def platform(self) -> str:
        """Inspector's spelling, e.g. ``UBUNTU_22_04``."""
        return re.sub(r"[^A-Z0-9]+", "_", f"{self.id} {self.version_id}".upper()).strip("_")


@dataclass
class Inventory:
    os: OperatingSystem | None
    packages: list[Package] = field(default_factory=list)


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def parse_os_release(data: bytes) -> dict[str, str]:
    out = {}
    for line in _text(data).splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("'\"")
    return out


def detect_os(fs: Filesystem) -> OperatingSystem | None:
    for path in ("etc/os-release", "usr/lib/os-release"):
        found = fs.read(path)
        if found is not None:
            fields = parse_os_release(found.data)
            if fields.get("ID"):
                os_id, version = fields["ID"].lower(), fields.get("VERSION_ID", "")
                if os_id == "debian" and not version:  # testing/sid: the major from debian_version
                    dv = fs.read("etc/debian_version")
                    major = _text(dv.data).strip().split(".")[0] if dv else ""
                    version = major if major.isdigit() else ""
                return OperatingSystem(os_id, version, fields.get("PRETTY_NAME", f"{os_id} {version}"))
    alpine = fs.read("etc/alpine-release")
    if alpine is not None:
        version = _text(alpine.data).strip()
        return OperatingSystem("alpine", version, f"Alpine Linux v{version}")
    return None


def _first_layers(fs: Filesystem, path: str, parse) -> dict[tuple[str, str], str]:  # type: ignore[no-untyped-def]
    """For each (name, version) in a package database: the layer whose version first listed it."""
    introduced: dict[tuple[str, str], str] = {}
    for layer, data in fs.history.get(path, []):
        if data is None:
            continue
        for pkg in parse(data, path, None):
            introduced.setdefault((pkg.name, pkg.version), layer)
    return introduced


def _split_source(field_value: str | None, name: str, version: str) -> tuple[str, str]:
    """dpkg ``Source: openssl (3.0.2-0ubuntu1.7)`` -> the source name and version."""
    if not field_value:
        return name, version
    m = re.fullmatch(r"\s*(\S+)(?:\s+\(([^)]+)\))?\s*", field_value)
    if not m:
        return name, version
    return m.group(1), m.group(2) or version


def parse_dpkg(data: bytes, path: str, layer: str | None) -> list[Package]:
    out = []
    for para in Deb822.iter_paragraphs(_text(data).splitlines()):
        name, version = para.get("Package"), para.get("Version")
        status = para.get("Status", "install ok installed")
        if not name or not version or not status.endswith(" installed"):
            continue
        source, source_version = _split_source(para.get("Source"), name, version)
        out.append(Package(name, version, "dpkg", source, source_version, para.get("Architecture"), layer, path))
    return out


def parse_apk(data: bytes, path: str, layer: str | None) -> list[Package]:
    out = []
    for block in re.split(r"\n\s*\n", _text(data)):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and len(key) == 1 and key not in fields:
                fields[key] = value
        name, version = fields.get("P"), fields.get("V")
        if name and version:
            origin = fields.get("o") or name
            out.append(Package(name, version, "apk", origin, version, fields.get("A"), layer, path))
    return out


def parse_python(data: bytes, path: str, layer: str | None) -> list[Package]:
    headers = HeaderParser().parsestr(_text(data))
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version or len(name) > MAX_NAME:
        return []
    return [Package(name.strip(), version.strip(), "python", normalize_package("PyPI", name.strip()),
                    version.strip(), None, layer, path)]


def parse_npm(data: bytes, path: str, layer: str | None) -> list[Package]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(doc, dict):
        return []
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or len(name) > MAX_NAME:
        return []
    return [Package(name, version, "npm", name, version, None, layer, path)]


def take(fs: Filesystem) -> Inventory:
    """The image's OS and every package found, sorted for stable output."""
    inventory = Inventory(detect_os(fs))
    for path, parse in ((DPKG_STATUS, parse_dpkg), (APK_INSTALLED, parse_apk)):
        current = fs.read(path)
        if current is None:
            continue
        introduced = _first_layers(fs, path, parse)
        for pkg in parse(current.data, path, current.layer):
            pkg.layer = introduced.get((pkg.name, pkg.version), current.layer)
            inventory.packages.append(pkg)
    for path, version in fs.matching(lambda p: p.startswith("var/lib/dpkg/status.d/")):
        inventory.packages += parse_dpkg(version.data, path, version.layer)
    for path, version in fs.matching(lambda p: WANTED_PATTERN.fullmatch(p) is not None):
        if PYTHON_METADATA.fullmatch(path):
            inventory.packages += parse_python(version.data, path, version.layer)
        elif NPM_PACKAGE.fullmatch(path):
            inventory.packages += parse_npm(version.data, path, version.layer)
    inventory.packages.sort(key=lambda p: (p.kind, p.name, p.version, p.path))
    return inventory
