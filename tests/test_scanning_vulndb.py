"""Version ordering per ecosystem, OSV range evaluation, severity mapping, and `vulndb import`."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ecr_emulator.core.scanning.matching import in_range
from ecr_emulator.core.vulndb import osv, severity, versions

ROOT = Path(__file__).resolve().parent.parent

# (ecosystem, lower, higher): each pair strictly ordered by that ecosystem's own rules.
ORDERED = [
    ("Debian", "1.18.25", "1.18.26"),
    ("Debian", "2021a-0+deb9u3", "2021a-0+deb9u4"),
    ("Debian", "1.0~rc1", "1.0"),  # tilde sorts before everything
    ("Debian", "1:0.9", "1:0.9.1"),
    ("Debian", "2.0", "1:0.1"),  # the epoch wins
    ("Ubuntu", "1.34+dfsg-1build3", "1.34+dfsg-1ubuntu0.1.22.04.1"),
    ("Ubuntu", "3.0.2-0ubuntu1.7", "3.0.2-0ubuntu1.10"),
    ("Alpine", "1.2.5-r0", "1.2.5-r1"),
    ("Alpine", "1.2.4_git20230717-r5", "1.2.5-r0"),
    ("Alpine", "1.36.1-r2", "1.36.1-r10"),
    ("Alpine", "1.1_alpha1", "1.1_beta"),
    ("Alpine", "1.1_rc2", "1.1"),
    ("Alpine", "1.1", "1.1_p1"),
    ("Alpine", "1.1", "1.1a"),
    ("Alpine", "1.1_git20200101", "1.1_p1"),
    ("PyPI", "23.1.2", "23.3"),
    ("PyPI", "70.0.0rc1", "70.0.0"),
    ("PyPI", "1.0.post1", "1.0.1"),
    ("PyPI", "2!1.0", "2!1.1"),
    ("npm", "7.5.1", "7.5.2"),
    ("npm", "7.5.2-rc.1", "7.5.2"),
    ("npm", "1.1.8", "2.0.0"),
    ("npm", "1.0.0-alpha", "1.0.0-alpha.1"),
]


@pytest.mark.parametrize("ecosystem,low,high", ORDERED)
def test_version_ordering(ecosystem, low, high):
    a, b = versions.parse(ecosystem, low), versions.parse(ecosystem, high)
    assert a is not None and b is not None
    assert a < b and b > a and not (a == b)


@pytest.mark.parametrize("ecosystem,a,b", [
    ("Debian", "1.0-1", "1.0-1"), ("Alpine", "1.2.5-r0", "1.2.5-r0"), ("PyPI", "1.0", "1.0.0"),
    ("PyPI", "1.0.0a1", "1.0a1"), ("npm", "v1.2.3", "1.2.3"), ("npm", "1.2.3+build.1", "1.2.3+build.2"),
])
def test_versions_equal_under_their_ordering(ecosystem, a, b):
    assert versions.parse(ecosystem, a) == versions.parse(ecosystem, b)


@pytest.mark.parametrize("ecosystem,text", [
    ("Alpine", "1.2-beta"), ("PyPI", "not a version"), ("npm", "1.2"), ("npm", "latest"), ("Unknown", "1.0"),
])
def test_unparsable_versions_are_none(ecosystem, text):
    assert versions.parse(ecosystem, text) is None


def _events(*pairs):
    return [{kind: value} for kind, value in pairs]


@pytest.mark.parametrize("family,installed,events,expected", [
    ("PyPI", "23.1.2", _events(("introduced", "0"), ("fixed", "23.3")), (True, "23.3")),
    ("PyPI", "23.3", _events(("introduced", "0"), ("fixed", "23.3")), (False, None)),
    ("npm", "1.1.8", _events(("introduced", "0"), ("last_affected", "1.1.8")), (True, None)),
    ("npm", "1.1.9", _events(("introduced", "0"), ("last_affected", "1.1.8")), (False, None)),
    ("npm", "6.9.0", _events(("introduced", "6.0.0"), ("fixed", "6.3.1")), (False, None)),
    # Several introduced/fixed pairs in one range, given out of order.
    ("npm", "2.5.0", _events(("fixed", "3.0.0"), ("introduced", "2.0.0"), ("introduced", "4.0.0"),
                             ("fixed", "4.1.0")), (True, "3.0.0")),
    ("npm", "3.5.0", _events(("fixed", "3.0.0"), ("introduced", "2.0.0"), ("introduced", "4.0.0"),
                             ("fixed", "4.1.0")), (False, None)),
    ("npm", "4.0.5", _events(("fixed", "3.0.0"), ("introduced", "2.0.0"), ("introduced", "4.0.0"),
                             ("fixed", "4.1.0")), (True, "4.1.0")),
    ("Alpine", "1.2.5-r0", _events(("introduced", "0.9.13"), ("fixed", "1.2.5-r1")), (True, "1.2.5-r1")),
    ("Alpine", "0.9.12", _events(("introduced", "0.9.13"), ("fixed", "1.2.5-r1")), (False, None)),
    ("Debian", "1.18.25", _events(("introduced", "0"),), (True, None)),  # no fix yet
])
def test_osv_range_evaluation(family, installed, events, expected):
    assert in_range(family, versions.parse(family, installed), events) == expected


@pytest.mark.parametrize("distro,vectors,db,expected", [
    ("medium", [("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")], None, "MEDIUM"),  # distro first
    ("negligible", [], None, "INFORMATIONAL"),
    ("low**", [], None, "LOW"),  # Debian's "uncertain" marks
    ("not yet assigned", [("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")], None, "CRITICAL"),
    (None, [("CVSS_V3", "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:H/A:N")], "MODERATE", "MEDIUM"),
    (None, [("CVSS_V2", "AV:N/AC:L/Au:N/C:C/I:C/A:C")], None, "HIGH"),  # v2 has no CRITICAL band
    (None, [("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")], None, "CRITICAL"),
    (None, [], "HIGH", "HIGH"),
    (None, [], "MODERATE", "MEDIUM"),
    (None, [("CVSS_V3", "garbage")], None, "UNDEFINED"),
    ("untriaged", [], None, "UNDEFINED"),
])
def test_severity_mapping(distro, vectors, db, expected):
    scores = severity.parse_cvss([{"type": t, "score": s} for t, s in vectors])
    assert severity.level(distro, scores, db) == expected


def test_record_names_and_validation():
    record = json.loads((ROOT / "fixtures/osv/debian/DLA-3022-1.json").read_text())
    parsed = osv.parse(record)
    assert parsed.name == "CVE-2022-1664" and parsed.aliases == ["CVE-2022-1664", "DEBIAN-CVE-2022-1664"]
    assert [(a.ecosystem, a.package) for a in parsed.affected] == [("Debian:9", "dpkg")]
    pypi = osv.parse({"id": "PYSEC-1", "modified": "2024-01-01T00:00:00Z",
                      "affected": [{"package": {"ecosystem": "PyPI", "name": "Foo_Bar.baz"}}]})
    assert pypi.affected[0].package == "foo-bar-baz" and pypi.name == "PYSEC-1"
    for bad, reason in [
        ([], "JSON object"),
        ({"modified": "2024-01-01T00:00:00Z"}, "'id'"),
        ({"id": "X-1"}, "'modified'"),
        ({"id": "X-1", "modified": "yesterday"}, "RFC 3339"),
        ({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": [{"package": {"name": "a"}}]}, "ecosystem"),
        ({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "affected": [
            {"package": {"ecosystem": "npm", "name": "a"}, "ranges": [{"type": "SEMVER", "events": [{}]}]}]},
         "exactly one of"),
    ]:
        with pytest.raises(osv.MalformedRecord, match=reason):
            osv.parse(bad)


def _cli(*args: str, data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecr_emulator", *args, "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=120)


def _count(data: Path) -> int:
    import sqlite3

    with sqlite3.connect(data / "ecr.db") as conn:
        return conn.execute("SELECT count(*) FROM vuln_advisories").fetchone()[0]


def test_cli_import_reports_and_skips_malformed_records(tmp_path):
    src = tmp_path / "osv"
    src.mkdir()
    records = list((ROOT / "fixtures/osv").rglob("*.json"))
    for path in records:
        (src / path.name).write_bytes(path.read_bytes())
    (src / "broken.json").write_text('{"id": "BROKEN-1", "modified": ')
    (src / "no-modified.json").write_text(json.dumps({"id": "BAD-2", "affected": []}))
    withdrawn = json.loads((ROOT / "fixtures/osv/npm/GHSA-c2qf-rxjj-qqgw.json").read_text())
    withdrawn.update(withdrawn="2024-01-01T00:00:00Z", modified="2030-01-01T00:00:00Z")
    (src / "withdrawn.json").write_text(json.dumps(withdrawn))
    data = tmp_path / "data"
    proc = _cli("vulndb", "import", str(src), data=data)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # every shipped record but the one the withdrawn copy replaces
    assert report["imported"] == len(records) - 1 and report["withdrawn"] == 1 and report["skipped"] == 2
    reasons = {r["source"]: r["reason"] for r in report["skippedRecords"]}
    assert reasons["broken.json"].startswith("not valid JSON")
    assert "'modified'" in reasons["no-modified.json"]
    assert _count(data) == len(records) - 1  # nothing of the malformed records, the withdrawn one removed

    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(ROOT / "fixtures/osv/npm/GHSA-c2qf-rxjj-qqgw.json", "GHSA-c2qf-rxjj-qqgw.json")
        zf.writestr("README.txt", "not a record")
    report = json.loads(_cli("vulndb", "import", str(archive), data=data).stdout)
    assert report["imported"] == 1 and report["skipped"] == 0
    assert _count(data) == len(records)  # the withdrawn record is back from the zip
    missing = _cli("vulndb", "import", str(tmp_path / "nope"), data=data)
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr
