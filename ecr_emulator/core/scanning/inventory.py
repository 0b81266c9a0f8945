"""What is installed in an image: its OS (from os-release) and its packages, each with the layer
that introduced it.

The package records were read as the layers streamed past (``packages``); this puts them
together: the current version of each package database, with the layer whose version of the
database first listed each package, ``status.d`` stanzas and language packages.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ecr_emulator.core.scanning.filesystem import Filesystem, FileVersion
from ecr_emulator.core.scanning.packages import EXACT, PACKAGE_DATABASES, Package

SUPPORTED_OS = ("debian", "ubuntu", "alpine")
__all__ = ["Inventory", "OperatingSystem", "Package", "detect_os", "take"]


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


def _text(version: FileVersion | None) -> str | None:
    if version is None or not isinstance(version.value, bytes):
        return None
    return version.value.decode("utf-8", errors="replace")


def _records(version: FileVersion) -> list[Package]:
    return version.value if isinstance(version.value, list) else []


def parse_os_release(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("'\"")
    return out


def detect_os(fs: Filesystem) -> OperatingSystem | None:
    for path in ("etc/os-release", "usr/lib/os-release"):
        text = _text(fs.read(path))
        if text is not None:
            fields = parse_os_release(text)
            if fields.get("ID"):
                os_id, version = fields["ID"].lower(), fields.get("VERSION_ID", "")
                if os_id == "debian" and not version:  # testing/sid: the major from debian_version
                    major = (_text(fs.read("etc/debian_version")) or "").strip().split(".")[0]
                    version = major if major.isdigit() else ""
                return OperatingSystem(os_id, version, fields.get("PRETTY_NAME", f"{os_id} {version}"))
    alpine = _text(fs.read("etc/alpine-release"))
    if alpine is not None:
        version = alpine.strip()
        return OperatingSystem("alpine", version, f"Alpine Linux v{version}")
    return None


def _placed(pkg: Package, path: str, layer: str) -> Package:
    """The record as found at ``path`` in ``layer`` (copied only when that differs from where it was read)."""
    if pkg.path == path and pkg.layer == layer:
        return pkg
    return dataclasses.replace(pkg, path=path, layer=layer)


def take(fs: Filesystem) -> Inventory:
    """The image's OS and every package found, sorted for stable output."""
    inventory = Inventory(detect_os(fs))
    for path in PACKAGE_DATABASES:
        current = fs.read(path)
        if current is None:
            continue
        introduced = fs.introduced.get(path, {})
        inventory.packages += [_placed(pkg, path, introduced.get((pkg.name, pkg.version), current.layer))
                               for pkg in _records(current)]
    for path, version in fs.matching(lambda p: p not in EXACT):  # status.d stanzas, language packages
        inventory.packages += [_placed(pkg, path, version.layer) for pkg in _records(version)]
    inventory.packages.sort(key=lambda p: (p.kind, p.name, p.version, p.path))
    return inventory
