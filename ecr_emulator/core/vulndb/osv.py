"""Reading one OSV record (the format of the public OSV data exports) into what the tables keep.

A record is validated completely before anything is stored, so a malformed one is reported and
skipped whole instead of being half-loaded. Only what matching and findings need is kept:
ranges of type ECOSYSTEM and SEMVER (GIT ranges name commits, which an image does not carry),
explicit ``versions`` lists, the distro's own rating of each affected package, CVSS vectors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RANGE_TYPES = ("ECOSYSTEM", "SEMVER")
EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
MAX_ID = 255
CVE = re.compile(r"CVE-\d{4}-\d{4,}")


class MalformedRecord(ValueError):
    """The record does not follow the OSV schema closely enough to be used."""


@dataclass
class Affected:
    ecosystem: str
    package: str
    ranges: list[dict[str, Any]]
    versions: list[str]
    distro_severity: str | None


@dataclass
class Advisory:
    osv_id: str
    name: str
    modified: float
    published: float | None
    summary: str | None
    details: str | None
    aliases: list[str]
    severity: list[dict[str, Any]]
    references: list[dict[str, Any]]
    database_severity: str | None
    withdrawn: bool
    affected: list[Affected] = field(default_factory=list)


def normalize_package(ecosystem: str, name: str) -> str:
    """PyPI names compare case-insensitively with runs of ``-_.`` equal (PEP 503); others exactly."""
    if ecosystem == "PyPI":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def _timestamp(value: Any, where: str, required: bool) -> float | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise MalformedRecord(f"'{where}' must be an RFC 3339 timestamp string")
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise MalformedRecord(f"'{where}' is not an RFC 3339 timestamp: {value!r}") from exc


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedRecord(f"'{where}' must be a list of strings")
    return list(value)


def _optional_text(value: Any, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MalformedRecord(f"'{where}' must be a string")
    return value


def _objects(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedRecord(f"'{where}' must be a list of objects")
    return value


def _severity(value: Any, where: str) -> list[dict[str, Any]]:
    out = []
    for i, entry in enumerate(_objects(value, where)):
        if not isinstance(entry.get("type"), str) or not isinstance(entry.get("score"), str):
            raise MalformedRecord(f"'{where}[{i}]' needs string 'type' and 'score'")
        out.append({"type": entry["type"], "score": entry["score"]})
    return out


def _ranges(value: Any, where: str) -> list[dict[str, Any]]:
    out = []
    for i, rng in enumerate(_objects(value, where)):
        kind = rng.get("type")
        if not isinstance(kind, str):
            raise MalformedRecord(f"'{where}[{i}].type' must be a string")
        events = _objects(rng.get("events"), f"{where}[{i}].events")
        if not events:
            raise MalformedRecord(f"'{where}[{i}].events' must not be empty")
        checked = []
        for j, event in enumerate(events):
            keys = [k for k in EVENT_KINDS if k in event]
            if len(keys) != 1 or not isinstance(event[keys[0]], str):
                raise MalformedRecord(
                    f"'{where}[{i}].events[{j}]' needs exactly one of introduced/fixed/last_affected/limit"
                )
            checked.append({keys[0]: event[keys[0]]})
        if kind in RANGE_TYPES:
            out.append({"type": kind, "events": checked})
    return out


def _distro_severity(entry: dict[str, Any]) -> str | None:
    """Ubuntu's priority or Debian's urgency for this package, when the record carries one."""
    for holder in ("ecosystem_specific", "database_specific"):
        specific = entry.get(holder)
        if isinstance(specific, dict):
            for key in ("ubuntu_priority", "urgency", "severity"):
                if isinstance(specific.get(key), str):
                    return specific[key][:64]
    return None


def _affected(value: Any) -> list[Affected]:
    out = []
    for i, entry in enumerate(_objects(value, "affected")):
        package = entry.get("package")
        if package is None:  # a GIT-only entry: nothing an installed package can match
            continue
        if not isinstance(package, dict):
            raise MalformedRecord(f"'affected[{i}].package' must be an object")
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not ecosystem or not isinstance(name, str) or not name:
            raise MalformedRecord(f"'affected[{i}].package' needs non-empty 'ecosystem' and 'name'")
        if len(ecosystem) > 128 or len(name) > 255:
            raise MalformedRecord(f"'affected[{i}].package' ecosystem or name is too long")
        out.append(
            Affected(
                ecosystem=ecosystem,
                package=normalize_package(ecosystem, name),
                ranges=_ranges(entry.get("ranges"), f"affected[{i}].ranges"),
                versions=_strings(entry.get("versions"), f"affected[{i}].versions"),
                distro_severity=_distro_severity(entry),
            )
        )
    return out


def display_name(osv_id: str, aliases: list[str], upstream: list[str]) -> str:
    """What ECR calls the finding: the CVE when the record is about exactly one, else the record id."""
    if CVE.fullmatch(osv_id):
        return osv_id
    cves = sorted({a for a in aliases + upstream if CVE.fullmatch(a)})
    return cves[0] if len(cves) == 1 else osv_id


def parse(record: Any) -> Advisory:
    """Validate one decoded OSV JSON document. Raises MalformedRecord with the reason."""
    if not isinstance(record, dict):
        raise MalformedRecord("an OSV record must be a JSON object")
    osv_id = record.get("id")
    if not isinstance(osv_id, str) or not osv_id.strip() or len(osv_id) > MAX_ID:
        raise MalformedRecord("'id' must be a non-empty string of at most 255 characters")
    aliases = _strings(record.get("aliases"), "aliases")
    upstream = _strings(record.get("upstream"), "upstream")
    database_specific = record.get("database_specific")
    db_severity = database_specific.get("severity") if isinstance(database_specific, dict) else None
    references = [
        {"type": r.get("type"), "url": r["url"]}
        for r in _objects(record.get("references"), "references")
        if isinstance(r.get("url"), str)
    ]
    return Advisory(
        osv_id=osv_id,
        name=display_name(osv_id, aliases, upstream),
        modified=_timestamp(record.get("modified"), "modified", True) or 0.0,
        published=_timestamp(record.get("published"), "published", False),
        summary=_optional_text(record.get("summary"), "summary"),
        details=_optional_text(record.get("details"), "details"),
        aliases=sorted(set(aliases + upstream) - {osv_id}),
        severity=_severity(record.get("severity"), "severity"),
        references=references,
        database_severity=db_severity[:32] if isinstance(db_severity, str) else None,
        withdrawn=_timestamp(record.get("withdrawn"), "withdrawn", False) is not None,
        affected=_affected(record.get("affected")),
    )
