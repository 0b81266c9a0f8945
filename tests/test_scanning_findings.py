"""Exact findings for images with known inventories, against the real advisories in fixtures/osv."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile

import pytest

from tests.images import build_image, push_via_api, tar_layer
from tests.scan_images import (
    DEBIAN_9,
    SITE,
    UBUNTU_2204,
    alpine_image,
    debian9_image,
    dist_info,
    dpkg_status,
    finding_set,
    node_image,
    npm_package,
    python_image,
    scan_and_wait,
    ubuntu_image,
    wait_for_scan,
)


def _scan(ecr, server, repo, image):
    push_via_api(ecr, repo, image)
    result = scan_and_wait(ecr, server, repo, image.digest)
    assert result["imageScanStatus"]["status"] == "COMPLETE", result["imageScanStatus"]
    return result


def _attrs(finding):
    return {a["key"]: a["value"] for a in finding["attributes"]}


# No real Ubuntu record is shipped (the Ubuntu OSV export is GPL-3.0); this one is SYNTHETIC,
# shaped like Ubuntu's export, to show Ubuntu images and the Ubuntu priority end to end.
SYNTHETIC_UBUNTU = {
    "id": "SYNTHETIC-UBUNTU-TAR-1",
    "modified": "2024-01-01T00:00:00Z",
    "details": "Synthetic test record (not a real advisory) affecting tar on Ubuntu 22.04.",
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H"}],
    "references": [{"type": "REPORT", "url": "https://example.invalid/SYNTHETIC-UBUNTU-TAR-1"}],
    "affected": [{
        "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "tar"},
        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                    {"fixed": "1.34+dfsg-1ubuntu0.1.22.04.1"}]}],
        "ecosystem_specific": {"ubuntu_priority": "low"},
    }],
}


@pytest.fixture
def synthetic_ubuntu(server, tmp_path):
    record = tmp_path / "SYNTHETIC-UBUNTU-TAR-1.json"
    record.write_text(json.dumps(SYNTHETIC_UBUNTU))
    subprocess.run([sys.executable, "-m", "ecr_emulator", "vulndb", "import", str(record),
                    *server.storage_args], check=True, capture_output=True, timeout=120)


def test_ubuntu_dpkg_findings_use_the_ubuntu_priority(ecr, server, repo, synthetic_ubuntu):
    result = _scan(ecr, server, repo, ubuntu_image())
    # tar 1.34+dfsg-1build3 is before the fix; libssl3 and bash have no record. The priority
    # (low) wins over the CVSS score (5.5, medium), as ECR documents.
    assert finding_set(result) == {("SYNTHETIC-UBUNTU-TAR-1", "tar", "1.34+dfsg-1build3", "LOW")}
    finding = result["imageScanFindings"]["findings"][0]
    assert finding["description"].startswith("Synthetic test record")
    assert _attrs(finding) == {
        "package_version": "1.34+dfsg-1build3", "package_name": "tar",
        "CVSS3_VECTOR": "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:N/A:H", "CVSS3_SCORE": "5.5",
    }
    assert result["imageScanFindings"]["findingSeverityCounts"] == {"LOW": 1}


def test_a_fixed_version_is_not_a_finding(ecr, server, repo, synthetic_ubuntu):
    fixed = dpkg_status(("tar", "1.34+dfsg-1ubuntu0.1.22.04.1", None))
    image = build_image([tar_layer({"usr/lib/os-release": UBUNTU_2204, "var/lib/dpkg/status": fixed})])
    result = _scan(ecr, server, repo, image)
    assert result["imageScanFindings"]["findings"] == []
    assert result["imageScanFindings"]["findingSeverityCounts"] == {}


def test_debian_source_packages_and_the_layer_that_introduced_them(ecr, server, repo):
    image = debian9_image()
    result = _scan(ecr, server, repo, image)
    # libssl1.1 (source openssl) is at the version DLA-3008-1 fixed: no finding for it.
    assert finding_set(result) == {
        ("CVE-2022-1664", "dpkg", "1.18.25", "UNDEFINED"),  # DLA-3022-1, named after its one CVE
        ("DLA-3051-1", "tzdata", "2021a-0+deb9u3", "UNDEFINED"),  # no CVE, no severity in the record
    }
    uris = {f["name"]: f["uri"] for f in result["imageScanFindings"]["findings"]}
    assert uris["DLA-3051-1"] == "https://osv.dev/vulnerability/DLA-3051-1"
    ecr.put_registry_scanning_configuration(scanType="ENHANCED", rules=[
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "app", "filterType": "WILDCARD"}]}])
    enhanced_image = debian9_image()
    push_via_api(ecr, repo, enhanced_image)
    enhanced = wait_for_scan(ecr, server, repo, enhanced_image.digest)["imageScanFindings"]["enhancedFindings"]
    packages = {f["packageVulnerabilityDetails"]["vulnerablePackages"][0]["name"]:
                f["packageVulnerabilityDetails"]["vulnerablePackages"][0] for f in enhanced}
    # Both packages were installed by the first layer; the second only rewrote the status file.
    assert packages["dpkg"]["sourceLayerHash"] == enhanced_image.layers[0].digest
    assert packages["tzdata"] == {
        "name": "tzdata", "version": "2021a", "epoch": 0, "release": "0+deb9u3", "arch": "amd64",
        "filePath": "var/lib/dpkg/status", "packageManager": "OS",
        "sourceLayerHash": enhanced_image.layers[0].digest, "fixedInVersion": "2021a-0+deb9u4",
    }
    assert {f["severity"] for f in enhanced} == {"UNTRIAGED"}


def test_alpine_apk_findings_by_origin(ecr, server, repo):
    result = _scan(ecr, server, repo, alpine_image())
    # musl and musl-utils both come from the musl origin; 1.2.5-r0 < 1.2.5-r1 (the 3.20 fix).
    assert finding_set(result) == {
        ("CVE-2025-26519", "musl", "1.2.5-r0", "HIGH"),
        ("CVE-2025-26519", "musl-utils", "1.2.5-r0", "HIGH"),
    }
    assert {f["uri"] for f in result["imageScanFindings"]["findings"]} == {
        "https://security.alpinelinux.org/vuln/CVE-2025-26519"}


def test_python_findings(ecr, server, repo):
    result = _scan(ecr, server, repo, python_image())
    assert finding_set(result) == {
        ("CVE-2023-5752", "pip", "23.1.2", "MEDIUM"),  # CVSS 5.5
        ("CVE-2024-6345", "setuptools", "65.5.1", "HIGH"),  # CVSS 8.8
    }


def test_npm_findings_semver_ranges_and_last_affected(ecr, server, repo):
    result = _scan(ecr, server, repo, node_image())
    # ip 1.1.8 is the last affected version, 2.0.0 is past it; semver 7.5.2 is the fix.
    assert finding_set(result) == {
        ("CVE-2022-25883", "semver", "7.5.1", "MEDIUM"),
        ("CVE-2023-42282", "ip", "1.1.8", "HIGH"),  # no vector: GitHub's own HIGH rating
    }


def test_a_whiteout_removes_a_vulnerable_package(ecr, server, repo):
    base = {"etc/os-release": DEBIAN_9}
    base.update(dist_info(SITE, "pip", "23.1.2"))
    base.update(dist_info(SITE, "setuptools", "65.5.1"))
    base.update(npm_package("srv", "semver", "7.5.1"))
    upper: dict[str, bytes | None] = {f"{SITE}/setuptools-65.5.1.dist-info": None, "srv/node_modules": None}
    upper.update(dist_info(SITE, "setuptools", "70.0.0"))
    image = build_image([tar_layer(base), tar_layer(upper)])
    result = _scan(ecr, server, repo, image)
    assert finding_set(result) == {("CVE-2023-5752", "pip", "23.1.2", "MEDIUM")}


def test_an_opaque_directory_hides_what_lower_layers_put_there(ecr, server, repo):
    lower = {"etc/os-release": DEBIAN_9}
    lower.update(dist_info(SITE, "pip", "23.1.2"))
    upper = {f"{SITE}/.wh..wh..opq": b""}
    upper.update(dist_info(SITE, "pip", "24.0"))
    image = build_image([tar_layer(lower), tar_layer(upper)])
    assert finding_set(_scan(ecr, server, repo, image)) == set()


def test_os_release_through_a_symlink_and_dpkg_status_d(ecr, server, repo):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("etc/os-release")
        link.type, link.linkname = tarfile.SYMTYPE, "../usr/lib/os-release"
        tar.addfile(link)
        for path, data in {"usr/lib/os-release": DEBIAN_9,
                           "var/lib/dpkg/status.d/dpkg": dpkg_status(("dpkg", "1.18.25", None))}.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    image = build_image([gzip.compress(buf.getvalue())])
    assert finding_set(_scan(ecr, server, repo, image)) == {("CVE-2022-1664", "dpkg", "1.18.25", "UNDEFINED")}


def test_nothing_recognisable_is_unsupported_image(ecr, server, repo):
    image = build_image([tar_layer({"bin/app": b"\x7fELF static binary", "etc/os-release": b"ID=scratchy\n"})])
    push_via_api(ecr, repo, image)
    result = scan_and_wait(ecr, server, repo, image.digest)
    assert result["imageScanStatus"] == {
        "status": "UNSUPPORTED_IMAGE",
        "description": "UnsupportedImageError: The operating system and/or package manager are not supported.",
    }
    assert "imageScanFindings" not in result


def test_language_packages_without_an_os_are_scanned(ecr, server, repo):
    image = build_image([tar_layer(npm_package("app", "semver", "6.3.0"))])
    assert finding_set(_scan(ecr, server, repo, image)) == {("CVE-2022-25883", "semver", "6.3.0", "MEDIUM")}
