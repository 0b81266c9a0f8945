"""Findings as ECR returns them: basic ``findings`` or Inspector-shaped ``enhancedFindings``.

Scans store one neutral dict per finding (see ``matching``); this module renders it for the
scan type being described, so switching between BASIC and ENHANCED needs no rescan of the data.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ecr_emulator.core.naming import Scope, partition_for, repository_arn
from ecr_emulator.storage.models import Image, Repository

MAX_ATTRIBUTE = 256
# Inspector's packageManager values for the package kinds the scanner reads.
PACKAGE_MANAGERS = {"dpkg": "OS", "apk": "OS", "python": "PYTHONPKG", "npm": "NODEPKG"}
ENHANCED_SEVERITY = {"UNDEFINED": "UNTRIAGED"}
CVSS_PREFERENCE = {"CVSS_V3": 0, "CVSS_V4": 1, "CVSS_V2": 2}


def _attr(key: str, value: Any) -> dict[str, str] | None:
    text = str(value) if value is not None else ""
    return {"key": key, "value": text[:MAX_ATTRIBUTE]} if text else None


def basic(finding: dict[str, Any]) -> dict[str, Any]:
    pkg = finding["package"]
    attributes = [_attr("package_version", pkg["version"]), _attr("package_name", pkg["name"])]
    for score in finding["cvss"]:
        label = {"CVSS_V2": "CVSS2", "CVSS_V3": "CVSS3", "CVSS_V4": "CVSS4"}[score["kind"]]
        attributes += [_attr(f"{label}_VECTOR", score["vector"]), _attr(f"{label}_SCORE", score["score"])]
    out = {
        "name": finding["name"],
        "uri": finding["uri"],
        "severity": finding["severity"],
        "attributes": [a for a in attributes if a is not None],
    }
    if finding["description"]:
        out["description"] = finding["description"]
    return out


def _split_version(kind: str, version: str) -> tuple[int, str, str | None]:
    """(epoch, version, release): dpkg ``1:1.2.11.dfsg-2ubuntu9`` -> (1, ``1.2.11.dfsg``, ``2ubuntu9``)."""
    epoch = 0
    if kind == "dpkg":
        m = re.fullmatch(r"(?:(\d+):)?(.+?)(?:-([^-]+))?", version)
        if m:
            return int(m.group(1) or 0), m.group(2), m.group(3)
    if kind == "apk":
        m = re.fullmatch(r"(.+?)-(r\d+)", version)
        if m:
            return 0, m.group(1), m.group(2)
    return epoch, version, None


def _finding_arn(scope: Scope, image: Image, finding: dict[str, Any]) -> str:
    pkg = finding["package"]
    key = "|".join([image.digest, finding["advisoryId"], pkg["name"], pkg["version"], pkg["path"]])
    return (f"arn:{partition_for(scope.region)}:inspector2:{scope.region}:{scope.account_id}:finding/"
            f"{hashlib.sha256(key.encode()).hexdigest()[:32]}")


def enhanced(scope: Scope, repo: Repository, image: Image, finding: dict[str, Any],
             completed_at: float, tags: list[str]) -> dict[str, Any]:
    pkg = finding["package"]
    epoch, version, release = _split_version(pkg["kind"], pkg["version"])
    vulnerable = {
        "name": pkg["name"], "version": version, "epoch": epoch, "release": release, "arch": pkg["arch"],
        "filePath": pkg["path"], "packageManager": PACKAGE_MANAGERS.get(pkg["kind"], "OS"),
        "sourceLayerHash": pkg["layer"], "fixedInVersion": finding["fixedIn"] or "NotAvailable",
    }
    cvss = [{"baseScore": s["score"], "scoringVector": s["vector"], "source": finding["advisoryId"],
             "version": s["version"]} for s in finding["cvss"]]
    details = {
        "vulnerabilityId": finding["name"],
        "vulnerablePackages": [{k: v for k, v in vulnerable.items() if v is not None}],
        "cvss": cvss,
        "referenceUrls": finding["references"],
        "relatedVulnerabilities": [a for a in finding["aliases"] if a != finding["name"]],
        "source": finding["advisoryId"].split("-", 1)[0],
        "sourceUrl": finding["uri"],
        "vendorSeverity": finding["vendorSeverity"] or finding["severity"],
        "vendorCreatedAt": finding["published"],
        "vendorUpdatedAt": finding["modified"],
    }
    fix = finding["fixedIn"]
    out: dict[str, Any] = {
        "awsAccountId": scope.account_id,
        "findingArn": _finding_arn(scope, image, finding),
        "description": finding["description"] or finding["summary"],
        "title": f"{finding['name']} - {pkg['name']}",
        "type": "PACKAGE_VULNERABILITY",
        "severity": ENHANCED_SEVERITY.get(finding["severity"], finding["severity"]),
        "status": "ACTIVE",
        "firstObservedAt": finding.get("firstObservedAt", completed_at),
        "lastObservedAt": completed_at,
        "updatedAt": completed_at,
        "packageVulnerabilityDetails": details,
        "remediation": {"recommendation": {
            "text": f"Upgrade {pkg['name']} to version {fix} or later." if fix else "None Provided",
            "url": finding["uri"],
        }},
        "resources": [{
            "id": f"{repository_arn(scope, repo.name)}/{image.digest}",
            "type": "AWS_ECR_CONTAINER_IMAGE",
            "details": {"awsEcrContainerImage": {
                "architecture": finding.get("architecture"), "imageHash": image.digest, "imageTags": tags,
                "platform": finding.get("platform"), "pushedAt": image.pushed_at, "registry": scope.account_id,
                "repositoryName": repo.name,
            }},
        }],
        "fixAvailable": "YES" if fix else "NO",
    }
    if finding["cvss"]:
        best = min(finding["cvss"], key=lambda s: CVSS_PREFERENCE[s["kind"]])
        out["score"] = best["score"]
        out["scoreDetails"] = {"cvss": {"score": best["score"], "scoreSource": finding["advisoryId"],
                                        "scoringVector": best["vector"], "version": best["version"],
                                        "adjustments": []}}
    return out
