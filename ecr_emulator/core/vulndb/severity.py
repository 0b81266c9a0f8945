"""Severity of a finding, in ECR's levels: the distribution's own rating first, else CVSS.

ECR documents the order ("uses the severity for a CVE from the upstream distribution source if
available; otherwise the CVSS score is used"), and UNDEFINED when the source gives no priority or
one it does not recognise. The CVSS base score is computed from the record's vector with the
``cvss`` library, then mapped with NVD's rating bands. GitHub advisories carry their own rating
in ``database_specific.severity``, used when a record has no vector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

LEVELS = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL", "UNDEFINED")
RANK = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3, "INFORMATIONAL": 4, "UNDEFINED": 5}

# Ubuntu priorities and Debian urgencies ("low*"/"low**" are Debian's uncertain ratings).
DISTRO_LEVELS = {
    "negligible": "INFORMATIONAL",
    "unimportant": "INFORMATIONAL",
    "low": "LOW",
    "medium": "MEDIUM",
    "moderate": "MEDIUM",
    "high": "HIGH",
    "important": "HIGH",
    "critical": "CRITICAL",
}
DATABASE_LEVELS = {"LOW": "LOW", "MODERATE": "MEDIUM", "MEDIUM": "MEDIUM", "HIGH": "HIGH", "CRITICAL": "CRITICAL"}
CVSS_TYPES = {"CVSS_V3": ("3", CVSS3), "CVSS_V4": ("4.0", CVSS4), "CVSS_V2": ("2.0", CVSS2)}


@dataclass(frozen=True)
class Cvss:
    kind: str  # CVSS_V2 | CVSS_V3 | CVSS_V4
    vector: str
    version: str
    score: float


def parse_cvss(entries: list[dict[str, Any]]) -> list[Cvss]:
    """Every OSV ``severity[]`` entry whose vector the ``cvss`` library can score."""
    out = []
    for entry in entries:
        kind, vector = entry.get("type"), entry.get("score")
        if kind not in CVSS_TYPES or not isinstance(vector, str):
            continue
        version, cls = CVSS_TYPES[kind]
        try:
            calc = cls(vector)
        except (CVSSError, ValueError, KeyError):
            continue
        score = float(calc.base_score)
        if kind == "CVSS_V3":
            version = "3.1" if vector.startswith("CVSS:3.1") else "3.0"
        out.append(Cvss(kind, vector, version, score))
    return out


def preferred_cvss(scores: list[Cvss]) -> Cvss | None:
    """The vector NVD would rate by: v3 first, then v4, then v2."""
    for kind in ("CVSS_V3", "CVSS_V4", "CVSS_V2"):
        for s in scores:
            if s.kind == kind:
                return s
    return None


def from_score(score: float, kind: str = "CVSS_V3") -> str:
    """NVD's qualitative bands. CVSS v2 has no CRITICAL band; its top band is HIGH."""
    if score == 0:
        return "INFORMATIONAL"
    if score < 4.0:
        return "LOW"
    if score < 7.0:
        return "MEDIUM"
    if score < 9.0 or kind == "CVSS_V2":
        return "HIGH"
    return "CRITICAL"


def from_distro(priority: str | None) -> str | None:
    if not priority:
        return None
    return DISTRO_LEVELS.get(priority.strip().rstrip("*").lower())


def level(distro_priority: str | None, scores: list[Cvss], database_severity: str | None) -> str:
    """ECR's severity for one (advisory, affected package)."""
    distro = from_distro(distro_priority)
    if distro is not None:
        return distro
    best = preferred_cvss(scores)
    if best is not None:
        return from_score(best.score, best.kind)
    if database_severity:
        return DATABASE_LEVELS.get(database_severity.upper(), "UNDEFINED")
    return "UNDEFINED"
