"""The scanner's memory stays bounded whatever the image holds.

Each hostile layer (tests/hostile_layers.py) is scanned in a fresh subprocess
(tests/scan_probe.py) that reports its peak resident-set growth: it must stay under 256 MiB, and
the scan must end either with the right inventory or with a ScanError naming the limit it hit.
Before these limits the same layers took a worker to 0.5-1.9 GiB (and some never finished).
The layers are built once per session, streamed to disk; they do not touch a database, so they
run on the SQLite pass only (the live FAILED case is in test_scanning_bad_input.py).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecr_emulator.core.scanning import inventory, layers
from tests import hostile_layers
from tests.hostile_layers import SITE, MiB, dpkg_status, metadata
from tests.images import tar_layer

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "tests" / "scan_probe.py"
LIMIT_MIB = 256

pytestmark = pytest.mark.skipif(os.environ.get("ECR_TEST_BACKEND") == "postgres",
                                reason="pure scanner tests: no database involved, run once")

MEMORY = ("the image's package records, symlinks and package history need more than 96 MiB "
          "of scanner memory (the scanner's memory limit)")
HEADERS = ("has tar headers larger than 1 MiB before one entry "
           "(the scanner's limit for pax headers, long names and sparse maps)")
# case -> the outcome the probe must print: an inventory (packages, os) or the error naming the limit.
EXPECTED: dict[str, dict] = {
    "metadata-60mib": {"packages": 1, "os": "UBUNTU_22_04"},
    "metadata-1000x1mib": {"packages": 1000, "os": "UBUNTU_22_04"},
    "million-entries": {"packages": 0, "os": "UBUNTU_22_04"},
    "symlinks-500k": {"error": MEMORY},
    "many-vulnerable-metadata": {"packages": 50_000, "os": "UBUNTU_22_04"},
    "dpkg-60mib": {"error": "var/lib/dpkg/status in layer sha256:{layer0} is larger than 32 MiB "
                            "(the scanner's limit for package databases)"},
    "dpkg-tiny-stanzas": {"error": MEMORY},
    "dpkg-one-stanza": {"packages": 1, "os": "UBUNTU_22_04"},
    "status-d-1gib": {"error": "the image's package metadata files add up to more than 1 GiB "
                               "(the scanner's read limit)"},
    "dpkg-20x10mib": {"packages": dpkg_status(10 * MiB, 19).count(b"\nPackage: ") + 1, "os": "UBUNTU_22_04"},
    "npm-deep": {"packages": 1, "os": "UBUNTU_22_04"},  # the deep documents are left out, "ip" is read
    "npm-huge": {"error": "app/node_modules/ip/package.json in layer sha256:{layer0} is larger than 4 MiB "
                          "(the scanner's limit for package.json)"},
    "npm-wide": {"error": "app/node_modules/ip/package.json in layer sha256:{layer0} holds more than 200000 "
                          "JSON values (the scanner's limit for package.json)"},
    "pax-header-512mib": {"error": f"layer sha256:{{layer0}} {HEADERS}"},
    "gnu-longname-512mib": {"error": f"layer sha256:{{layer0}} {HEADERS}"},
    "gnu-sparse-map": {"error": f"layer sha256:{{layer0}} {HEADERS}"},
    "pax-global-headers": {"error": "layer sha256:{layer0} has global pax headers larger than 1 MiB "
                                    "(the scanner's limit)"},
    "long-path": {"error": "layer sha256:{layer0} has an entry whose path is longer than 4096 characters "
                           "(Linux's PATH_MAX, the scanner's limit)"},
    "many-whiteouts": {"packages": 0, "os": "UBUNTU_22_04"},
    "zstd-window-64mib": {"packages": 0, "os": "UBUNTU_22_04"},
    "zstd-window-128mib": {"error": "layer sha256:{layer0} needs a zstd window of 128 MiB, more than 64 MiB "
                                    "(the scanner's limit; standard zstd levels use 8 MiB)"},
    "worst-together": {"packages": 115_000, "os": "UBUNTU_22_04"},
}
# The whole scan-image job (match and store the findings), on a fresh data directory.
JOB_EXPECTED: dict[str, dict] = {
    "findings-45k": {"status": "COMPLETE", "findings": 45_000},
    "findings-70k": {"status": "FAILED", "findings": 0,
                     "error": "ScanFailed: the image has more than 50000 findings (the scanner's limit)"},
}


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """Build each case's layers on first use, once per session."""
    root, built = tmp_path_factory.mktemp("hostile"), {}

    def layers(case: str) -> list[Path]:
        if case not in built:
            (root / case).mkdir()
            built[case] = hostile_layers.CASES[case](root / case)
        return built[case]
    return layers


def probe(*args: str) -> dict:
    done = subprocess.run([sys.executable, str(PROBE), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("case", list(EXPECTED))
def test_hostile_layer_scans_in_bounded_memory(hostile, case):
    result = probe(*map(str, hostile(case)))
    expected = {k: v.format(layer0="0" * 64) if isinstance(v, str) else v for k, v in EXPECTED[case].items()}
    assert result["outcome"] == expected, result
    assert result["growth_mib"] < LIMIT_MIB, result


@pytest.mark.parametrize("case", list(JOB_EXPECTED))
def test_scan_job_with_many_findings_in_bounded_memory(hostile, case):
    result = probe("--job", *map(str, hostile(case)))
    assert result["outcome"] == JOB_EXPECTED[case], result
    assert result["growth_mib"] < LIMIT_MIB, result


def test_probe_measures_growth(tmp_path):
    """The probe can fail: a scan that holds 300 MiB more reads as 300 MiB (so the bound above means something)."""
    layer = hostile_layers.write_tar(tmp_path / "os.tgz", iter([hostile_layers.small("etc/os-release",
                                                                                     hostile_layers.OS_RELEASE)]))
    code = ("import runpy, sys\n"
            "from ecr_emulator.core.scanning import layers\n"
            "real = layers.apply_layers\n"
            "def hog(*args):\n"
            "    hog.kept = b'x' * (300 * 1024 * 1024)\n"
            "    return real(*args)\n"
            "layers.apply_layers = hog\n"
            f"runpy.run_path({str(PROBE)!r}, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code, str(layer)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["growth_mib"] >= 300, result
    assert result["outcome"] == {"packages": 0, "os": "UBUNTU_22_04"}


def _apply(*layer_files: dict) -> layers.Filesystem:
    blobs = [tar_layer(files) for files in layer_files]
    return layers.apply_layers([(f"sha256:{i:064x}", lambda b=b: io.BytesIO(b)) for i, b in enumerate(blobs)],
                               1 << 30)


def test_kept_memory_is_given_back_when_removed():
    """Whiteouts, opaque directories and replaced versions release what they charged: no leak."""
    lower = {"etc/os-release": hostile_layers.OS_RELEASE,
             f"{SITE}/a-1.0.dist-info/METADATA": metadata("a", "1.0"),
             f"{SITE}/b-1.0.dist-info/METADATA": metadata("b", "1.0"),
             "app/node_modules/c/package.json": b'{"name": "c", "version": "1.0.0"}',
             "var/lib/dpkg/status.d/d": b"Package: d\nVersion: 1\n"}
    fs = _apply(lower, {f"{SITE}/a-1.0.dist-info": None, "app/.wh..wh..opq": b""})
    assert sorted(fs.files) == ["etc/os-release", f"{SITE}/b-1.0.dist-info/METADATA", "var/lib/dpkg/status.d/d"]
    assert fs.retained.used > 0
    fs = _apply(lower, {f"{SITE}/b-1.0.dist-info/METADATA": metadata("b", "2.0")}, {".wh..wh..opq": b""})
    assert (fs.files, fs.links, list(fs.paths), fs.retained.used) == ({}, {}, [], 0)


def test_database_history_is_kept_as_first_layers_only():
    """Each version of the dpkg status is parsed as it streams past; the history is (name, version) -> layer."""
    v1 = dpkg_status_of(("tar", "1.0"), ("bash", "5.0"))
    v2 = dpkg_status_of(("tar", "1.0"), ("bash", "5.1"), ("libssl3", "3.0"))
    fs = _apply({"etc/os-release": hostile_layers.OS_RELEASE, "var/lib/dpkg/status": v1},
                {"var/lib/dpkg/status": v2}, {"var/lib/dpkg/status": v2})
    layer = [f"sha256:{i:064x}" for i in range(3)]
    assert fs.introduced["var/lib/dpkg/status"] == {("tar", "1.0"): layer[0], ("bash", "5.0"): layer[0],
                                                    ("bash", "5.1"): layer[1], ("libssl3", "3.0"): layer[1]}
    found = {(p.name, p.version): p.layer for p in inventory.take(fs).packages}
    assert found == {("tar", "1.0"): layer[0], ("bash", "5.1"): layer[1], ("libssl3", "3.0"): layer[1]}


def dpkg_status_of(*packages: tuple[str, str]) -> bytes:
    return b"".join(b"Package: %s\nStatus: install ok installed\nVersion: %s\nDescription: x\n long\n\n"
                    % (n.encode(), v.encode()) for n, v in packages)
