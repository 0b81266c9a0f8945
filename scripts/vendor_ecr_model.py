#!/usr/bin/env python3
"""Vendor the ECR service model of one botocore release into ecr_emulator/api/model/.

    scripts/vendor_ecr_model.py 1.44.8

Downloads that botocore wheel with pip (no dependencies, nothing installed), copies its ECR
``service-2.json`` (decompressed; botocore ships it gzipped) and records where it came from in
``source.json``. The emulator validates requests and computes coverage from this copy only, so
a botocore upgrade never changes them; re-run this script to move to a newer model, then update
the coverage figure in the README (tests/test_readme.py says which).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent.parent / "ecr_emulator" / "api" / "model"
MEMBER = "botocore/data/ecr/2015-09-21/service-2.json"


def main(version: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                        "-d", tmp, f"botocore=={version}"], check=True)
        wheel = next(Path(tmp).glob("botocore-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            member = MEMBER if MEMBER in names else MEMBER + ".gz"
            model = zf.read(member)
            if member.endswith(".gz"):
                model = gzip.decompress(model)
            notice = zf.read(f"botocore-{version}.dist-info/NOTICE")
        wheel_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    operations = sorted(json.loads(model)["operations"])
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    (MODEL_DIR / "service-2.json").write_bytes(model)
    (MODEL_DIR / "NOTICE").write_bytes(notice)
    source = {
        "botocore": version,
        "member": member,
        "wheel": wheel.name,
        "wheel_sha256": wheel_sha,
        "model_sha256": hashlib.sha256(model).hexdigest(),
        "operations": len(operations),
        "license": "Apache-2.0 (botocore; see NOTICE)",
    }
    (MODEL_DIR / "source.json").write_text(json.dumps(source, indent=2) + "\n")
    print(f"vendored the ECR model of botocore {version}: {len(operations)} operations")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    raise SystemExit(main(sys.argv[1]))
