"""The scanner's memory stays bounded whatever the image holds.

Each hostile layer (tests/hostile_layers.py) is scanned in a fresh subprocess
(tests/scan_probe.py) that reports its peak resident-set growth: it must stay under 256 MiB, and
the scan must end either with the right inventory or with a ScanError naming the limit it hit.
Before these limits the same layers took a worker to 0.5-1.9 GiB (and some never finished).
The layers are built once per session, streamed to disk; they do not touch a database, so they
run on the SQLite pass only (the live FAILED case is in test_scanning_bad_input.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import hostile_layers
from tests.hostile_layers import MiB, dpkg_status

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
    "symlinks-300k": {"error": MEMORY},
    "many-vulnerable-metadata": {"error": MEMORY},
    "dpkg-60mib": {"error": "var/lib/dpkg/status in layer sha256:{layer0} is larger than 32 MiB "
                            "(the scanner's limit for package databases)"},
    "dpkg-tiny-stanzas": {"error": MEMORY},
    "dpkg-20x10mib": {"packages": dpkg_status(10 * MiB, 19).count(b"\nPackage: ") + 1, "os": "UBUNTU_22_04"},
    "npm-deep": {"packages": 1, "os": "UBUNTU_22_04"},  # the deep documents are left out, "ip" is read
    "npm-huge": {"error": "app/node_modules/ip/package.json in layer sha256:{layer0} is larger than 4 MiB "
                          "(the scanner's limit for package.json)"},
    "npm-wide": {"error": "app/node_modules/ip/package.json in layer sha256:{layer0} holds more than 200000 "
                          "JSON values (the scanner's limit for package.json)"},
    "pax-header-512mib": {"error": f"layer sha256:{{layer0}} {HEADERS}"},
    "gnu-longname-512mib": {"error": f"layer sha256:{{layer0}} {HEADERS}"},
    "many-whiteouts": {"packages": 0, "os": "UBUNTU_22_04"},
    "zstd-window-64mib": {"packages": 0, "os": "UBUNTU_22_04"},
    "zstd-window-128mib": {"error": "layer sha256:{layer0} needs a zstd window of 128 MiB, more than 64 MiB "
                                    "(the scanner's limit; standard zstd levels use 8 MiB)"},
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
    """The probe can fail: a scan that holds 300 MiB reads as over the limit (so the bound above means something)."""
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
    assert result["growth_mib"] > LIMIT_MIB, result
    assert result["outcome"] == {"packages": 0, "os": "UBUNTU_22_04"}
