"""Blob uploads on the wire: monolithic POST, POST+PUT, chunked PATCH, streamed PATCH, status,
cancel and cross-repository mount. Request bodies are streamed to staging, never buffered."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flask import Response, request

from ecr_emulator.core import errors, repositories, settings_store, uploads
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import DIGEST
from ecr_emulator.registry.errors import OciError

if TYPE_CHECKING:
    from ecr_emulator.registry.app import Call

CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(\d+|\*))?$")


def _location(name: str, upload_id: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def _progress(name: str, upload_id: str, size: int, status: int = 202) -> Response:
    return Response(
        status=status,
        headers={
            "Location": _location(name, upload_id),
            "Range": f"0-{max(size - 1, 0)}",
            "Docker-Upload-UUID": upload_id,
            "Content-Length": "0",
        },
    )


def _created(name: str, digest: str) -> Response:
    return Response(
        status=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"},
    )


def _body_chunks() -> Iterator[bytes]:
    stream = request.stream
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return
        yield chunk


def _has_body() -> bool:
    length = request.headers.get("Content-Length")
    if length is not None:
        return int(length) > 0 if length.isdigit() else False
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _open_upload(call: Call, name: str, upload_id: str) -> None:
    with call.services.unit(call.caller.scope, call.caller.principal) as ctx:
        repo = repositories.get(ctx, name)
        uploads.get_upload(ctx, repo, upload_id)


def _stream_in(call: Call, name: str, upload_id: str) -> int:
    try:
        size = uploads.append(call.services, upload_id, _body_chunks())
    except FileNotFoundError as exc:
        raise OciError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry") from exc
    with call.services.unit(call.caller.scope, call.caller.principal, write=True) as ctx:
        uploads.touch(ctx, repositories.get(ctx, name), upload_id)
    return size


def _commit(call: Call, name: str, upload_id: str, digest: str) -> Response:
    if not DIGEST.fullmatch(digest):
        raise OciError("DIGEST_INVALID", f"Invalid digest '{digest}'")
    with call.services.unit(call.caller.scope, call.caller.principal, write=True) as ctx:
        repo = repositories.get(ctx, name, for_update=True)
        upload = uploads.get_upload(ctx, repo, upload_id)
        uploads.commit(ctx, repo, upload, digest, exists_ok=True)
    return _created(name, digest)


def start(call: Call, name: str) -> Response:
    mount, source = request.args.get("mount"), request.args.get("from")
    digest = request.args.get("digest")
    with call.services.unit(call.caller.scope, call.caller.principal, write=True) as ctx:
        if mount and source and call.services.may_mount() and _try_mount(ctx, name, mount, source):
            return _created(name, mount)
        upload = uploads.initiate(ctx, name)
    if digest is not None:  # monolithic upload: POST ?digest= with the whole blob as body
        _stream_in(call, name, upload.id)
        return _commit(call, name, upload.id, digest)
    return _progress(name, upload.id, 0)


def _try_mount(ctx: Context, name: str, digest: str, source: str) -> bool:
    """Mount a blob from another repository of this registry when ECR would (section 12.7):
    blob mounting enabled, the source readable and holding the blob, same encryption.
    Otherwise the client falls back to a normal upload, as the protocol allows."""
    if not DIGEST.fullmatch(digest) or source == name:
        return False
    if settings_store.account_setting(ctx, "BLOB_MOUNTING") != "ENABLED":
        return False
    target = repositories.get(ctx, name, for_update=True)
    src = repositories.find(ctx, source)
    if src is None or (src.encryption_type, src.kms_key) != (target.encryption_type, target.kms_key):
        return False
    if not uploads.is_linked(ctx, src, digest):
        return False
    size = ctx.blobs.size(digest)
    if size is None:
        return False
    uploads.link_blob(ctx, target, digest, size)
    return True


def status(call: Call, name: str, upload_id: str) -> Response:
    _open_upload(call, name, upload_id)
    size = call.services.blobs.upload_size(upload_id) or 0
    return _progress(name, upload_id, size, status=204)


def patch(call: Call, name: str, upload_id: str) -> Response:
    _open_upload(call, name, upload_id)
    size = call.services.blobs.upload_size(upload_id) or 0
    content_range = request.headers.get("Content-Range")
    if content_range:
        m = _CONTENT_RANGE.match(content_range.strip())
        if not m:
            raise OciError("BLOB_UPLOAD_INVALID", f"Malformed Content-Range '{content_range}'")
        first, last = int(m[1]), int(m[2])
        if first != size or last < first:
            raise OciError(
                "RANGE_INVALID",
                f"Content-Range {first}-{last} does not continue the upload at byte {size}",
                headers={"Location": _location(name, upload_id), "Range": f"0-{max(size - 1, 0)}",
                         "Docker-Upload-UUID": upload_id},
            )
        length = request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) != last - first + 1:
            raise OciError("RANGE_INVALID", "Content-Length does not match Content-Range",
                           headers={"Range": f"0-{max(size - 1, 0)}"})
    new_size = _stream_in(call, name, upload_id)
    return _progress(name, upload_id, new_size)


def finish(call: Call, name: str, upload_id: str) -> Response:
    digest = request.args.get("digest")
    if not digest:
        raise OciError("DIGEST_INVALID", "The digest query parameter is required to complete an upload")
    _open_upload(call, name, upload_id)
    if _has_body():
        _stream_in(call, name, upload_id)
    try:
        return _commit(call, name, upload_id, digest)
    except errors.InvalidLayerException as exc:
        raise OciError("DIGEST_INVALID", exc.message) from exc


def cancel(call: Call, name: str, upload_id: str) -> Response:
    with call.services.unit(call.caller.scope, call.caller.principal, write=True) as ctx:
        repo = repositories.get(ctx, name)
        uploads.cancel(ctx, repo, uploads.get_upload(ctx, repo, upload_id))
    return Response(status=204, headers={"Content-Length": "0"})
