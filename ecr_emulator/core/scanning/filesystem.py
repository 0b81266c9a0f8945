"""The merged view of an image's wanted files as its layers are applied: what the scan keeps.

Each file is kept as what was read of it (its package records, or a text file's first bytes) with
the layer that wrote it; symlinks are kept to resolve os-release and the package databases as a
chroot would. Kept paths are also held in order (``sortedcontainers``), where everything below a
directory is one range, so a whiteout or a directory replaced by a file removes what is below it
without looking at every kept path. Everything kept (records, symlinks, the layer that first
listed each package) is charged to the scan's memory budget and given back when it is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from ecr_emulator.core.scanning.limits import COST, SYMLINK_HOPS, Budget, retained_budget
from ecr_emulator.core.scanning.packages import PACKAGE_DATABASES, Package


@dataclass
class FileVersion:
    value: list[Package] | bytes  # a package database's or metadata file's records, or a text file's bytes
    layer: str  # digest of the layer that wrote this version
    cost: int  # estimated bytes held (charged to the scan's memory budget)


@dataclass
class Filesystem:
    """The merged view of the wanted files after the layers applied so far."""

    retained: Budget = field(default_factory=retained_budget)
    files: dict[str, FileVersion] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    # For each package database: (name, version) -> the layer whose version of it first listed it.
    introduced: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
    paths: SortedList = field(default_factory=SortedList)  # the keys of files and links, in order

    def _below(self, directory: str) -> list[str]:
        """Kept paths strictly below ``directory`` ("" is the root): one range, as "/" sorts just before "0"."""
        if not directory:
            return list(self.paths)
        return list(self.paths.irange(directory + "/", directory + "0", inclusive=(True, False)))

    def _forget(self, path: str) -> None:
        version = self.files.pop(path, None)
        if version is not None:
            self.retained.release(COST["file"] + len(path) + version.cost)
            self.paths.remove(path)
        target = self.links.pop(path, None)
        if target is not None:
            self.retained.release(COST["link"] + len(path) + len(target))
            self.paths.remove(path)

    def remove(self, path: str) -> None:
        """Remove ``path`` and everything below it (a whiteout, or an entry replacing it)."""
        if path:
            self.drop(path)
            self.remove_below(path)

    def remove_below(self, directory: str) -> None:
        """Remove everything below ``directory`` ("" is the root): an opaque whiteout."""
        for key in self._below(directory):
            self._forget(key)

    def drop(self, path: str) -> None:
        """Remove the file or symlink at ``path`` only (a directory entry merges with what is below)."""
        if path in self.files or path in self.links:
            self._forget(path)

    def put_link(self, path: str, target: str) -> None:
        """A symlink replaces whatever was at ``path``, directory contents included."""
        self.remove(path)
        self.links[path] = target
        self.paths.add(path)

    def put_file(self, path: str, version: FileVersion) -> None:
        """``version`` was charged when it was read; replacing an older version gives that back."""
        self.drop(path)
        self.files[path] = version
        self.paths.add(path)
        if path in PACKAGE_DATABASES and isinstance(version.value, list):
            seen = self.introduced.setdefault(path, {})
            for pkg in version.value:
                if (pkg.name, pkg.version) not in seen:
                    self.retained.spend(COST["introduced"] + len(pkg.name) + len(pkg.version))
                    seen[(pkg.name, pkg.version)] = version.layer

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
            if hops > SYMLINK_HOPS:
                return None
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
        return "/".join(done)

    def read(self, path: str) -> FileVersion | None:
        real = self.resolve(path)
        return self.files.get(real) if real is not None else None

    def matching(self, predicate: Callable[[str], bool]) -> list[tuple[str, FileVersion]]:
        return sorted(((p, v) for p, v in self.files.items() if predicate(p)), key=lambda item: item[0])
