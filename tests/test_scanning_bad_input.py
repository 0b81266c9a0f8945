"""Layers that are corrupt, oddly compressed, bombs or escape attempts end as FAILED with a reason."""

from __future__ import annotations

import bz2
import gzip
import io
import tarfile
import uuid
from pathlib import Path

import pytest
import zstandard

from tests import hostile_layers
from tests.conftest import make_client
from tests.images import OCI_LAYER, push_via_api, tar_layer
from tests.scan_images import DEBIAN_9, SITE, dist_info, finding_set, gz_layer, raw_image, scan_and_wait
from tests.server import start_server

ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"
TAR_LAYER = "application/vnd.oci.image.layer.v1.tar"




def _python_files() -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {"etc/os-release": DEBIAN_9}
    files.update(dist_info(SITE, "pip", "23.1.2"))
    return files


def _status(ecr, server, repo, layers):
    image = raw_image(layers)
    push_via_api(ecr, repo, image)
    return scan_and_wait(ecr, server, repo, image.digest)["imageScanStatus"]


def test_zstd_and_uncompressed_layers_are_read(ecr, server, repo):
    plain = tar_layer(_python_files(), compress=False)
    for layer in ((zstandard.ZstdCompressor().compress(plain), ZSTD_LAYER), (plain, TAR_LAYER)):
        image = raw_image([layer])
        push_via_api(ecr, repo, image)
        result = scan_and_wait(ecr, server, repo, image.digest)
        assert finding_set(result) == {("CVE-2023-5752", "pip", "23.1.2", "MEDIUM")}


@pytest.mark.parametrize("layer,reason", [
    (b"\x1f\x8b\x08\x00" + b"not really deflate data" * 40, "is corrupt or not a tar archive"),
    (gzip.compress(tar_layer(_python_files(), compress=False))[:300], "is corrupt or not a tar archive"),
    (gzip.compress(b"plain text, no tar headers here\n" * 64), "is corrupt or not a tar archive"),
    (bz2.compress(tar_layer(_python_files(), compress=False)), "unsupported layer compression"),
    (b"\xfd7zXZ\x00" + bytes(600), "unsupported layer compression"),
])
def test_unreadable_layers_fail_with_a_reason(ecr, server, repo, layer, reason):
    status = _status(ecr, server, repo, [gz_layer(_python_files()), (layer, OCI_LAYER)])
    assert status["status"] == "FAILED"
    assert reason in status["description"]
    assert status["description"].startswith("ScanFailed: ")


def _tar(entries: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in entries:
            payload = data.get(info.name, b"")
            info.size = len(payload) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(payload) if info.isreg() else None)
    return gzip.compress(buf.getvalue())


def test_path_traversal_fails_and_writes_nothing(ecr, server, repo, tmp_path):
    target = Path("/tmp") / f"ecr-escape-{uuid.uuid4().hex}"
    climbing = "../" * 12 + target.relative_to("/").as_posix()
    layer = _tar([tarfile.TarInfo(climbing)], {climbing: b"escaped"})
    status = _status(ecr, server, repo, [gz_layer(_python_files()), (layer, OCI_LAYER)])
    assert status["status"] == "FAILED"
    assert "path traversal" in status["description"] and "leaves the image root" in status["description"]
    assert not target.exists()
    # A symlink pointing out of the image followed by a file "through" it: nothing is written either.
    link = tarfile.TarInfo("var/lib/dpkg")
    link.type, link.linkname = tarfile.SYMTYPE, str(tmp_path)
    through = tarfile.TarInfo("var/lib/dpkg/status")
    layer = _tar([link, through], {"var/lib/dpkg/status": b"Package: x\nVersion: 1\n"})
    status = _status(ecr, server, repo, [gz_layer(_python_files()), (layer, OCI_LAYER)])
    assert status["status"] == "COMPLETE"
    assert list(tmp_path.iterdir()) == []
    assert not any(p.name.startswith("ecr-escape") for p in server.data_dir.rglob("*"))


def test_oversized_package_database_fails(ecr, server, repo):
    huge = gzip.compress(tar_layer({"var/lib/dpkg/status": bytes(65 * 1024 * 1024)}, compress=False), 1)
    status = _status(ecr, server, repo, [gz_layer(_python_files()), (huge, OCI_LAYER)])
    assert status["status"] == "FAILED"
    assert "var/lib/dpkg/status" in status["description"] and "larger than" in status["description"]


def _zstd_bomb(size: int) -> bytes:
    """A tar holding one file of ``size`` zero bytes, zstd-compressed to a few kilobytes."""
    info = tarfile.TarInfo("data/zeros")
    info.size = size
    out = io.BytesIO()
    writer = zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False)
    writer.write(info.tobuf(format=tarfile.PAX_FORMAT))
    chunk = bytes(4 * 1024 * 1024)
    for _ in range(size // len(chunk)):
        writer.write(chunk)
    writer.write(bytes(1024))
    writer.close()
    return out.getvalue()


def test_decompression_bomb_fails(tmp_path):
    live = start_server(tmp_path / "data", "--scan-max-unpacked-bytes", str(16 * 1024 * 1024))
    try:
        ecr = make_client(live)
        ecr.create_repository(repositoryName="bomb")
        bomb = _zstd_bomb(1024 * 1024 * 1024)
        assert len(bomb) < 1024 * 1024  # 1 GiB of tar in well under 1 MiB
        image = raw_image([gz_layer(_python_files()), (bomb, ZSTD_LAYER)])
        push_via_api(ecr, "bomb", image)
        status = scan_and_wait(ecr, live, "bomb", image.digest)["imageScanStatus"]
        assert status["status"] == "FAILED"
        assert "decompression bomb" in status["description"]
        # The same server still scans a sane image afterwards.
        ok = raw_image([gz_layer(_python_files())])
        push_via_api(ecr, "bomb", ok)
        assert scan_and_wait(ecr, live, "bomb", ok.digest)["imageScanStatus"]["status"] == "COMPLETE"
    finally:
        live.stop()


def _worker_memory_kib(live, field: str, reset_peak: bool = False) -> int:
    """VmRSS or VmHWM (peak resident set) of the server's one worker process, where scans run.
    ``reset_peak`` first sets the peak to the current resident set (Linux's clear_refs "5")."""
    pid = live.process.pid
    (worker,) = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    if reset_peak:
        Path(f"/proc/{worker}/clear_refs").write_text("5")
    status = Path(f"/proc/{worker}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:")))


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """A server with one worker process and no background job threads: scans run when asked, there."""
    live = start_server(tmp_path_factory.mktemp("memory") / "data", "--workers", "1", "--job-workers", "0")
    yield live
    live.stop()


@pytest.mark.parametrize("case,reason", [
    ("pax-header-512mib", "has tar headers larger than 1 MiB before one entry (the scanner's limit for pax "
                          "headers, long names and sparse maps)"),
    ("symlinks-500k", "need more than 96 MiB of scanner memory (the scanner's memory limit)"),
    ("findings-70k", "ScanFailed: the image has more than 50000 findings (the scanner's limit)"),
])
def test_hostile_image_fails_naming_the_limit_in_bounded_memory(one_worker, tmp_path, case, reason):
    """Pushed through boto3 and scanned by the live server: FAILED with the limit, worker growth < 256 MiB."""
    ecr = make_client(one_worker)
    repo = f"hostile-{case}"
    ecr.create_repository(repositoryName=repo)
    layer_files = hostile_layers.CASES[case](tmp_path)
    image = raw_image([gz_layer(_python_files()), *[(p.read_bytes(), OCI_LAYER) for p in layer_files]])
    push_via_api(ecr, repo, image)
    one_worker.run_jobs()  # the worker has loaded everything a scan needs before the baseline
    baseline = _worker_memory_kib(one_worker, "VmRSS", reset_peak=True)
    status = scan_and_wait(ecr, one_worker, repo, image.digest)["imageScanStatus"]
    assert status["status"] == "FAILED"
    assert status["description"].startswith("ScanFailed: ") and reason in status["description"], status
    assert (_worker_memory_kib(one_worker, "VmHWM") - baseline) / 1024 < 256
