"""`vulndb update` against a local stand-in for the OSV bucket (an HTTP server on 127.0.0.1 that
the test starts), serving zips of real OSV records (fixtures/osv), and `vulndb import` progress."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.test_scanning_findings import SYNTHETIC_UBUNTU

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "osv"


def zip_of(records: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in records.items():
            zf.writestr(name, data)
    return buf.getvalue()


def export(folder: str) -> bytes:
    """A zip shaped like OSV's <Ecosystem>/all.zip: one record per member, at the top."""
    return zip_of({p.name: p.read_bytes() for p in sorted((FIXTURES / folder).glob("*.json"))})


class Bucket:
    def __init__(self) -> None:
        self.objects = {
            "/Alpine/all.zip": export("alpine"),
            "/Debian/all.zip": export("debian"),
            "/PyPI/all.zip": export("pypi"),
            "/npm/all.zip": export("npm"),
            # SYNTHETIC: the Ubuntu export is GPL-3.0, so no real Ubuntu record ships (fixtures/README.md)
            "/Ubuntu/all.zip": zip_of({"SYNTHETIC-UBUNTU-TAR-1.json": json.dumps(SYNTHETIC_UBUNTU).encode()}),
        }
        self.requested: list[str] = []


@pytest.fixture
def bucket() -> Iterator[tuple[Bucket, str]]:
    state = Bucket()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            state.requested.append(self.path)
            if self.path == "/Broken/all.zip":  # announces more than it sends, then hangs up
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(export("pypi")[:1000])
                self.close_connection = True
                return
            body = state.objects.get(self.path)
            if body is None:
                self.send_error(404, "No such object")
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def cli(*args: str, data: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECR_EMULATOR_")}
    return subprocess.run([sys.executable, "-m", "ecr_emulator", *args, "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=300, env=env)


def advisories(data: Path) -> set[str]:
    with sqlite3.connect(data / "ecr.db") as conn:
        return {row[0] for row in conn.execute("SELECT osv_id FROM vuln_advisories")}


def test_update_downloads_and_imports_the_scanner_s_ecosystems(bucket, tmp_path):
    state, url = bucket
    data = tmp_path / "data"
    proc = cli("vulndb", "update", "--vulndb-url", url, data=data)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert sorted(state.requested) == sorted(state.objects)
    assert {eco: r["imported"] for eco, r in report.items()} == {"Alpine": 1, "Debian": 3, "Ubuntu": 1, "PyPI": 2,
                                                                   "npm": 2}
    shipped = {p.stem for p in FIXTURES.rglob("*.json")}
    assert advisories(data) == shipped | {"SYNTHETIC-UBUNTU-TAR-1"}
    for eco in report:  # a download bar and an import bar per ecosystem, each run to the end
        assert f"download {eco}: 100%" in proc.stderr and f"import {eco}: 100%" in proc.stderr
    assert not list(data.glob("vulndb-*")), "downloads are removed once imported"


def test_update_of_chosen_ecosystems_from_the_variable(bucket, tmp_path):
    state, url = bucket
    data = tmp_path / "data"
    env_url = {"ECR_EMULATOR_VULNDB_URL": url}
    proc = subprocess.run([sys.executable, "-m", "ecr_emulator", "vulndb", "update", "--ecosystem", "PyPI",
                           "--ecosystem", "npm", "--no-progress", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env_url})
    assert proc.returncode == 0, proc.stderr
    assert state.requested == ["/PyPI/all.zip", "/npm/all.zip"]
    assert proc.stderr == ""  # --no-progress
    assert advisories(data) == {p.stem for p in (FIXTURES / "pypi").glob("*.json")} | {
        p.stem for p in (FIXTURES / "npm").glob("*.json")}


def test_update_failures_are_one_line(bucket, tmp_path):
    state, url = bucket
    data = tmp_path / "data"
    unknown = cli("vulndb", "update", "--vulndb-url", url, "--ecosystem", "pypi", data=data)
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    line = unknown.stderr.strip().splitlines()[-1]
    assert "/pypi/all.zip: HTTP 404" in line and "--ecosystem" in line and "--vulndb-url" in line
    broken = cli("vulndb", "update", "--vulndb-url", url, "--ecosystem", "Broken", "--no-progress", data=data)
    assert broken.returncode == 1 and "broke off after 1000 of 100000 bytes" in broken.stderr
    assert "Traceback" not in broken.stderr
    closed = cli("vulndb", "update", "--vulndb-url", "http://127.0.0.1:9/", "--ecosystem", "PyPI", data=data)
    assert closed.returncode == 2 and "Connection refused" in closed.stderr
    assert advisories(data) == set()


def test_import_shows_progress_and_stores_large_sources_in_chunks(tmp_path):
    """1,200 records (SYNTHETIC ids, made here from a real record's shape) cross several
    transactions; a later, newer copy of an id replaces the earlier one wherever it was stored."""
    base = json.loads((FIXTURES / "pypi" / "GHSA-mq26-g339-26xf.json").read_text())
    records = {}
    for i in range(1200):
        rec = dict(base, id=f"SYNTHETIC-{i:05d}", aliases=[])
        records[f"a/{i:05d}.json"] = json.dumps(rec).encode()
    newer = dict(base, id="SYNTHETIC-00003", aliases=[], modified="2031-01-01T00:00:00Z",
                 withdrawn="2031-01-01T00:00:00Z")
    records["z/withdrawn.json"] = json.dumps(newer).encode()
    records["z/broken.json"] = b"{"
    archive = tmp_path / "big.zip"
    archive.write_bytes(zip_of(records))
    data = tmp_path / "data"
    proc = cli("vulndb", "import", str(archive), data=data)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["imported"], report["withdrawn"], report["skipped"]) == (1199, 1, 1)
    assert f"import {archive}: 100%" in proc.stderr and "1202/1202" in proc.stderr
    stored = advisories(data)
    assert len(stored) == 1199 and "SYNTHETIC-00003" not in stored
