"""Blob GET/HEAD (with Range), streamed from the blob file in ``BLOCK`` pieces.

The body is the server's ``wsgi.file_wrapper`` around the open file, so it is never read
whole into memory. The server is configured without ``sendfile`` (``server.py``): measured
with ``scripts/bench/registry.py`` on loopback, where an emulator's clients are, 4 MiB
``read`` + ``send`` pieces delivered a 256 MiB blob 10-25% faster than ``sendfile`` (median of
interleaved runs; ``sendfile`` swung between 1.7 and 6.5 GiB/s from run to run), for no more
CPU. The wrapper still carries a real file (``fileno``), so turning ``sendfile`` back on needs
no change here.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from flask import Request, Response, request
from werkzeug.wsgi import wrap_file

from ecr_emulator.core import errors, layers, repositories
from ecr_emulator.core.naming import DIGEST, Principal
from ecr_emulator.registry import auth
from ecr_emulator.registry.errors import OciError

if TYPE_CHECKING:
    from ecr_emulator.core.context import Services
    from ecr_emulator.registry.app import Call

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
BLOCK = 4 * 1024 * 1024  # bytes per read + send of a blob body; 1 MiB measured ~7% slower


def presigned_caller(services: Services, req: Request, params: dict[str, str]) -> auth.Caller | None:
    """A GetDownloadUrlForLayer URL authenticates itself (like a pre-signed S3 URL)."""
    signature = req.args.get("X-Emulator-Signature")
    if signature is None or req.method not in ("GET", "HEAD") or "digest" not in params:
        return None
    scope = services.hosts.scope_from_host(req.headers.get("Host"))
    with services.unit(scope) as ctx:
        ok = layers.check_download_signature(
            ctx, params["name"], params["digest"], req.args.get("X-Emulator-Expires", ""), signature
        )
    if not ok:
        raise OciError("DENIED", "The download URL is invalid or has expired.")
    return auth.Caller(scope, Principal(scope.account_id, "presigned-url"), presigned=True)


def get(call: Call, name: str, digest: str) -> Response:
    if not DIGEST.fullmatch(digest):
        raise OciError("DIGEST_INVALID", f"Invalid digest '{digest}'")
    with call.services.unit(call.caller.scope, call.caller.principal) as ctx:
        repo = repositories.get(ctx, name)
        size = layers.readable_blob(ctx, repo, digest)
    if size is None:
        raise errors.BlobUnknown(f"Blob {digest} is unknown to repository '{name}'")
    headers = {
        "Docker-Content-Digest": digest,
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }
    start, end = 0, size - 1
    status = 200
    range_header = request.headers.get("Range")
    if range_header:
        parsed = _parse_range(range_header, size)
        if parsed is None:
            raise OciError("RANGE_INVALID", f"Range '{range_header}' is not satisfiable for {size} bytes",
                           headers={"Content-Range": f"bytes */{size}"})
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(end - start + 1, 0)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status=status, headers=headers, content_type="application/octet-stream")
    try:
        fh = call.services.blobs.open(digest)
    except FileNotFoundError as exc:
        raise errors.BlobUnknown(f"Blob {digest} is unknown to repository '{name}'") from exc
    if start:
        fh.seek(start, os.SEEK_SET)
    body = wrap_file(request.environ, _Bounded(fh, length) if end != size - 1 else fh, BLOCK)
    resp = Response(body, status=status, headers=headers, content_type="application/octet-stream",
                    direct_passthrough=True)
    return resp


class _Bounded:
    """A file view that stops after ``length`` bytes (for Range reads); keeps ``fileno`` so a
    server using sendfile (which honours Content-Length) serves ranges correctly too."""

    def __init__(self, fh, length: int) -> None:  # type: ignore[no-untyped-def]
        self._fh = fh
        self._left = length

    def fileno(self) -> int:
        return self._fh.fileno()

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._fh.read(size)
        self._left -= len(data)
        return data

    def seek(self, *args):  # type: ignore[no-untyped-def]
        return self._fh.seek(*args)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    m = _RANGE.match(header.strip())
    if not m or (not m[1] and not m[2]):
        return None
    if not m[1]:  # suffix: last N bytes
        n = int(m[2])
        if n == 0:
            return None
        return max(size - n, 0), size - 1
    start = int(m[1])
    end = int(m[2]) if m[2] else size - 1
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def delete(call: Call, name: str, digest: str) -> Response:
    with call.services.unit(call.caller.scope, call.caller.principal) as ctx:
        repositories.get(ctx, name)
    raise OciError("UNSUPPORTED", "Amazon ECR does not support deleting blobs; delete images instead.")
