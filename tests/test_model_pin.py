"""The ECR model that validates requests and computes coverage is the vendored copy, not the
installed botocore's: a botocore upgrade (here simulated with AWS_DATA_PATH, which botocore's
own loader honours) changes nothing the emulator accepts or reports."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from ecr_emulator.api import protocol

BACKFILL = {"DescribeReplicationBackfillResults", "ListReplicationBackfills", "StartReplicationBackfill",
            "StopReplicationBackfill"}


def test_the_vendored_model_is_the_recorded_botocore_release():
    source = protocol.model_source()
    data = (protocol.MODEL / "service-2.json").read_bytes()
    assert hashlib.sha256(data).hexdigest() == source["model_sha256"]
    assert source["botocore"] == "1.44.8"
    names = protocol.operation_names()
    assert len(names) == source["operations"] == 62
    assert BACKFILL <= names
    assert protocol.service_model().metadata["targetPrefix"] + "." == protocol.TARGET_PREFIX


def test_another_botocore_model_on_the_path_changes_nothing(tmp_path):
    fake = json.loads((protocol.MODEL / "service-2.json").read_bytes())
    fake["operations"] = {k: v for k, v in fake["operations"].items() if k in ("CreateRepository", "PutImage")}
    target = tmp_path / "ecr" / "2015-09-21"
    target.mkdir(parents=True)
    (target / "service-2.json").write_text(json.dumps(fake))
    probe = (
        "import json, botocore.session\n"
        "from ecr_emulator.api.control import coverage\n"
        "from ecr_emulator.api.operations import load_all\n"
        "load_all()\n"
        "seen = botocore.session.get_session().get_service_model('ecr').operation_names\n"
        "print(json.dumps({'botocore': len(seen), 'coverage': coverage()}))\n"
    )
    env = {"AWS_DATA_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = json.loads(subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                                    check=True).stdout)
    assert out["botocore"] == 2  # botocore itself now sees the other model...
    assert out["coverage"]["total"] == 62  # ...the emulator does not
    assert out["coverage"]["model"] == "botocore 1.44.8 (vendored)"
    assert BACKFILL <= set(out["coverage"]["implementedOperations"]) | set(out["coverage"]["missingOperations"])
