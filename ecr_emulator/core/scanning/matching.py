"""Matching an inventory against the vulnerability database: the findings of one scan.

A package is affected by an OSV ``affected[]`` entry when its version is listed in ``versions``
or falls inside one of the ranges, evaluated as the OSV schema specifies (events sorted by the
ecosystem's ordering; ``introduced`` opens, ``fixed`` and ``last_affected`` close). The same
vulnerability reported twice for one package (a GHSA and a PYSEC record of one CVE) is one
finding. Findings are plain dicts, stored as they are and rendered per scan type on the way out.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy.orm import Session

from ecr_emulator.core.scanning.inventory import Inventory, Package
from ecr_emulator.core.scanning.limits import MAX_FINDINGS, ScanError
from ecr_emulator.core.vulndb import severity, store, versions
from ecr_emulator.storage.models import VulnAdvisory, VulnAffected

LANGUAGE_ECOSYSTEMS = {"python": "PyPI", "npm": "npm"}
OSV_URL = "https://osv.dev/vulnerability/{}"


def _event_version(event: dict[str, str]) -> tuple[str, str]:
    kind = next(iter(event))
    return kind, event[kind]


def in_range(family: str, installed: Any, events: list[dict[str, str]]) -> tuple[bool, str | None]:
    """(affected, the version that fixes it) for one range; unparsable event versions are skipped."""
    keyed = []
    for event in events:
        kind, text = _event_version(event)
        if kind == "introduced" and text == "0":
            keyed.append((0, None, kind, text))
            continue
        parsed = versions.parse(family, text)
        if parsed is not None:
            keyed.append((1, parsed, kind, text))
    keyed.sort(key=_event_order)
    affected, fixed_in = False, None
    for _, point, kind, _text in keyed:
        if kind == "introduced" and (point is None or installed >= point):
            affected = True
        elif kind == "fixed" and installed >= point:
            affected = False
        elif kind == "last_affected" and installed > point:
            affected = False
    if affected:
        fixes = [(p, t) for _, p, k, t in keyed if k == "fixed" and p is not None and p > installed]
        fixed_in = min(fixes, key=lambda f: _Sortable(f[0]))[1] if fixes else None
    return affected, fixed_in


class _Sortable:
    """Orders parsed versions of one family (they only define ``<`` among themselves)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Sortable) -> bool:
        return bool(self.value < other.value)


def _event_order(item: tuple[int, Any, str, str]) -> tuple[int, _Sortable | int]:
    return (item[0], _Sortable(item[1]) if item[1] is not None else 0)


def affects(family: str, pkg: Package, entry: VulnAffected) -> tuple[bool, str | None]:
    if pkg.source_version in (entry.versions or []):
        return True, _fix_for(family, pkg, entry)
    installed = versions.parse(family, pkg.source_version)
    if installed is None:
        return False, None
    for rng in entry.ranges or []:
        hit, fixed_in = in_range(family, installed, rng["events"])
        if hit:
            return True, fixed_in
    return False, None


def _fix_for(family: str, pkg: Package, entry: VulnAffected) -> str | None:
    installed = versions.parse(family, pkg.source_version)
    if installed is None:
        return None
    for rng in entry.ranges or []:
        _, fixed_in = in_range(family, installed, rng["events"])
        if fixed_in:
            return fixed_in
    return None


def _ecosystems(inventory: Inventory, pkg: Package) -> list[str]:
    if pkg.kind in LANGUAGE_ECOSYSTEMS:
        return [LANGUAGE_ECOSYSTEMS[pkg.kind]]
    return inventory.os.ecosystems if inventory.os is not None else []


def _uri(advisory: VulnAdvisory) -> str:
    refs = advisory.references or []
    for ref in refs:
        if ref.get("type") == "ADVISORY":
            return ref["url"]
    return refs[0]["url"] if refs else OSV_URL.format(advisory.osv_id)


def _advisory_part(advisory: VulnAdvisory, entry: VulnAffected) -> dict[str, Any]:
    """What every finding of one affected entry shares (built once, its values shared by all)."""
    scores = severity.parse_cvss(advisory.severity or [])
    return {
        "name": advisory.name,
        "advisoryId": advisory.osv_id,
        "description": advisory.details or advisory.summary or "",
        "summary": advisory.summary,
        "uri": _uri(advisory),
        "severity": severity.level(entry.distro_severity, scores, advisory.database_severity),
        "vendorSeverity": entry.distro_severity or advisory.database_severity,
        "cvss": [{"kind": s.kind, "vector": s.vector, "version": s.version, "score": s.score} for s in scores],
        "aliases": advisory.aliases or [],
        "references": [r["url"] for r in advisory.references or []],
        "published": advisory.published,
        "modified": advisory.modified,
        "ecosystem": entry.ecosystem,
    }


def _finding(pkg: Package, shared: dict[str, Any], fixed_in: str | None) -> dict[str, Any]:
    return {
        **shared,
        "fixedIn": fixed_in,
        "package": {
            "name": pkg.name, "version": pkg.version, "kind": pkg.kind, "sourceName": pkg.source_name,
            "arch": pkg.arch, "layer": pkg.layer, "path": pkg.path,
        },
    }


def find(session: Session, inventory: Inventory) -> list[dict[str, Any]]:
    """Every finding for the inventory, most severe first; ScanError past MAX_FINDINGS."""
    wanted: dict[tuple[str, str], list[Package]] = defaultdict(list)
    for pkg in inventory.packages:
        for ecosystem in _ecosystems(inventory, pkg):
            wanted[(ecosystem, pkg.source_name)].append(pkg)
    by_ecosystem: dict[str, set[str]] = defaultdict(set)
    for ecosystem, name in wanted:
        by_ecosystem[ecosystem].add(name)
    findings: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for ecosystem, names in by_ecosystem.items():
        for entry, advisory in store.affected_rows(session, [ecosystem], names):
            family = versions.family(entry.ecosystem)
            shared = None
            for pkg in wanted.get((entry.ecosystem, entry.package), []):
                hit, fixed_in = affects(family, pkg, entry)
                if not hit:
                    continue
                shared = shared or _advisory_part(advisory, entry)
                key = (advisory.name, pkg.name, pkg.version, pkg.path)
                found = _finding(pkg, shared, fixed_in)
                if key not in findings or _rank(found) < _rank(findings[key]):
                    findings[key] = found
                    if len(findings) > MAX_FINDINGS:
                        raise ScanError(f"the image has more than {MAX_FINDINGS} findings (the scanner's limit)")
    return sorted(findings.values(), key=lambda f: (_rank(f), f["name"], f["package"]["name"], f["package"]["version"]))


def _rank(finding: dict[str, Any]) -> int:
    return severity.RANK[finding["severity"]]


def severity_counts(findings: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for f in findings:
        counts[f["severity"]] += 1
    return dict(counts)
