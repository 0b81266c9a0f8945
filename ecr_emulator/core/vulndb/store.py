"""Importing OSV records into the vulnerability tables, and the look-ups the scanner makes.

An import reads a folder (every ``*.json`` below it), a zip of OSV records (the shape of the
public OSV exports, one record per ``.json`` member) or a single record file, one record at a
time. Every record is validated before it is stored; a malformed one is reported and skipped,
never half-loaded; valid ones replace their earlier versions in transactions of ``CHUNK``
records (see ``import_path``).
Look-ups go by the (ecosystem, package) index: matching 500 packages touches only their rows.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ecr_emulator.core.context import Services
from ecr_emulator.core.vulndb import osv
from ecr_emulator.storage.models import VulnAdvisory, VulnAffected

log = logging.getLogger(__name__)

MAX_RECORD_BYTES = 16 * 1024 * 1024
CHUNK = 500
# The real advisories shipped with ecr-emulator (see fixtures/README.md).
# fixtures/osv in a checkout; installed as package data through the ecr_emulator/data/osv link.
FIXTURES = Path(__file__).resolve().parents[2] / "data" / "osv"


Progress = Callable[[int, int], None]  # (done, total)


class ImportFailed(Exception):
    """The source as a whole cannot be read (missing path, not a zip...)."""


@dataclass
class ImportReport:
    imported: int = 0
    withdrawn: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"imported": self.imported, "withdrawn": self.withdrawn, "skipped": len(self.skipped),
                "skippedRecords": self.skipped}


@dataclass
class Source:
    """The records under one path: how many (known before reading, for progress) and an iterator of
    (name, bytes, None) per record file, or (name, None, reason) for one too large to read."""

    total: int
    records: Iterator[tuple[str, bytes | None, str | None]]


def open_source(path: Path) -> Source:
    if path.is_dir():
        files = sorted(path.rglob("*.json"))

        def from_dir() -> Iterator[tuple[str, bytes | None, str | None]]:
            for file in files:
                if file.stat().st_size > MAX_RECORD_BYTES:
                    yield str(file.relative_to(path)), None, "record is larger than 16 MiB"
                else:
                    yield str(file.relative_to(path)), file.read_bytes(), None

        return Source(len(files), from_dir())
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise ImportFailed(f"{path}: unreadable zip archive ({exc})") from exc
        members = sorted((i for i in archive.infolist() if not i.is_dir() and i.filename.endswith(".json")),
                         key=lambda i: i.filename)

        def from_zip() -> Iterator[tuple[str, bytes | None, str | None]]:
            with archive:
                for info in members:
                    if info.file_size > MAX_RECORD_BYTES:
                        yield info.filename, None, "record is larger than 16 MiB"
                        continue
                    try:
                        with archive.open(info) as member:
                            data = member.read(MAX_RECORD_BYTES + 1)
                    except (zipfile.BadZipFile, OSError, EOFError) as exc:
                        raise ImportFailed(f"{path}: unreadable zip archive ({exc})") from exc
                    yield info.filename, data, None

        return Source(len(members), from_zip())
    if path.is_file():
        return Source(1, iter([(path.name, path.read_bytes()[: MAX_RECORD_BYTES + 1], None)]))
    raise ImportFailed(f"{path}: no such file or directory")


def _parse(name: str, data: bytes | None, reason: str | None, report: ImportReport) -> osv.Advisory | None:
    if data is None:
        report.skipped.append({"source": name, "reason": reason or "unreadable"})
        return None
    try:
        return osv.parse(json.loads(data))
    except (ValueError, UnicodeDecodeError) as exc:  # MalformedRecord is a ValueError
        why = str(exc) if isinstance(exc, osv.MalformedRecord) else f"not valid JSON: {exc}"
        report.skipped.append({"source": name, "reason": why})
        return None


def _chunks(items: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def store(session: Session, advisories: Iterable[osv.Advisory], report: ImportReport) -> None:
    """Replace the stored versions of these advisories (withdrawn ones are only removed)."""
    items = list(advisories)
    for ids in _chunks([a.osv_id for a in items]):
        session.execute(delete(VulnAdvisory).where(VulnAdvisory.osv_id.in_(ids)))
    live = [a for a in items if not a.withdrawn]
    report.withdrawn += len(items) - len(live)
    for batch in _chunks(live):
        rows = session.execute(
            insert(VulnAdvisory).returning(VulnAdvisory.id, VulnAdvisory.osv_id),
            [
                {"osv_id": a.osv_id, "name": a.name, "modified": a.modified, "published": a.published,
                 "summary": a.summary, "details": a.details, "aliases": a.aliases, "severity": a.severity,
                 "references": a.references, "database_severity": a.database_severity}
                for a in batch
            ],
        ).all()
        ids = {osv_id: pk for pk, osv_id in rows}
        affected = [
            {"advisory_id": ids[a.osv_id], "ecosystem": x.ecosystem, "package": x.package, "ranges": x.ranges,
             "versions": x.versions, "distro_severity": x.distro_severity}
            for a in batch
            for x in a.affected
        ]
        if affected:
            session.execute(insert(VulnAffected), affected)
    report.imported += len(live)


def import_path(services: Services, path: str | Path, progress: Progress | None = None) -> ImportReport:
    """Import a folder, zip or file of OSV records, reading them one at a time.

    Records are validated as they are read and stored in transactions of ``CHUNK`` records, each
    record replacing its earlier version whole (so scans never see half a record, a live server's
    writers wait for one short transaction at a time, and memory stays bounded whatever the size of
    the export). Where a source holds one id twice, the newer ``modified`` wins. An import stopped
    half-way has stored the earlier chunks; running it again completes it.
    ``progress(done, total)`` is told after each record.
    """
    source = open_source(Path(path).expanduser())
    report, scratch = ImportReport(), ImportReport()
    kept: dict[str, tuple[float, bool]] = {}  # id -> (modified, withdrawn) of the version kept
    batch: dict[str, osv.Advisory] = {}

    def flush() -> None:
        if batch:
            services.db.run(lambda session: store(session, list(batch.values()), scratch), write=True)
            batch.clear()

    for done, (name, data, reason) in enumerate(source.records, 1):
        advisory = _parse(name, data, reason, report)
        if advisory is not None and (advisory.osv_id not in kept or advisory.modified >= kept[advisory.osv_id][0]):
            kept[advisory.osv_id] = (advisory.modified, advisory.withdrawn)
            batch[advisory.osv_id] = advisory
            if len(batch) >= CHUNK:
                flush()
        if progress is not None:
            progress(done, source.total)
    flush()
    report.withdrawn = sum(1 for _, withdrawn in kept.values() if withdrawn)
    report.imported = len(kept) - report.withdrawn
    log.info("vulnerability database import from %s: %s imported, %s withdrawn, %s skipped",
             path, report.imported, report.withdrawn, len(report.skipped))
    return report


def is_empty(session: Session) -> bool:
    return session.scalar(select(VulnAdvisory.id).limit(1)) is None


def source_updated_at(session: Session) -> float | None:
    """When the vulnerability data was last changed at its source: the newest record's ``modified``."""
    return session.scalar(select(func.max(VulnAdvisory.modified)))


def affected_rows(
    session: Session, ecosystems: list[str], packages: Iterable[str]
) -> list[tuple[VulnAffected, VulnAdvisory]]:
    """Every affected entry (with its advisory) for these packages in these ecosystems."""
    names = sorted(set(packages))
    out: list[tuple[VulnAffected, VulnAdvisory]] = []
    if not ecosystems or not names:
        return out
    for batch in _chunks(names):
        stmt = (
            select(VulnAffected, VulnAdvisory)
            .join(VulnAdvisory, VulnAdvisory.id == VulnAffected.advisory_id)
            .where(VulnAffected.ecosystem.in_(ecosystems), VulnAffected.package.in_(batch))
        )
        out.extend((row[0], row[1]) for row in session.execute(stmt))
    return out


def seed_path(setting: str) -> Path | None:
    if not setting:
        return None
    if setting == "auto":
        return FIXTURES if FIXTURES.is_dir() else None
    return Path(setting).expanduser()


def seed_if_empty(services: Services) -> ImportReport | None:
    """Load the configured seed (by default the shipped real advisories) into an empty database."""
    path = seed_path(services.settings.vulndb_seed)
    if path is None or not services.db.run(is_empty):
        return None
    try:
        return import_path(services, path)
    except ImportFailed as exc:
        log.warning("vulnerability database seed not loaded: %s", exc)
        return None
