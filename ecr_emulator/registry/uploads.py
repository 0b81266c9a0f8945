"""Blob uploads on the wire: monolithic POST, POST+PUT, chunked PATCH, streamed PATCH, status,
cancel and cross-repository mount. Request bodies are streamed to staging, except a PATCH body of
at most ``SMALL_BODY`` bytes, which is read whole so that its append takes one transaction."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from flask import Response

from ecr_emulator.core import errors, repositories, settings_store, templates, uploads
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import DIGEST
from ecr_emulator.registry.body import BodyUnreadable, body_chunks, content_length
from ecr_emulator.registry.current import request
from ecr_emulator.registry.errors import OciError

if TYPE_CHECKING:
    from ecr_emulator.core.repositories import Repository
    from ecr_emulator.registry.app import Call

CHUNK = 1024 * 1024
SMALL_BODY = 1024 * 1024  # a PATCH body up to this size is read whole, then appended in one transaction
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


def _has_body() -> bool:
    length = content_length()
    if length is not None:
        return length > 0
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _open_upload(call: Call, name: str, upload_id: str) -> int:
    """The upload's recorded size; BLOB_UPLOAD_UNKNOWN if it is not an upload of ``name``."""
    return call.run(lambda ctx: uploads.get_upload(ctx, repositories.get(ctx, name), upload_id).size)


def _stream_in(call: Call, name: str, upload_id: str, check: Callable[[int], None] | None = None,
               body: Iterable[bytes] | None = None) -> int:
    try:
        return uploads.append(call.services, upload_id, body_chunks(CHUNK) if body is None else body, check)
    except FileNotFoundError as exc:
        raise OciError("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry") from exc
    except uploads.UploadBusy as exc:
        raise OciError("BLOB_UPLOAD_INVALID", f"{exc}; ask for the upload's status and resume from the "
                       "offset it reports") from exc
    except BodyUnreadable as exc:
        raise OciError("BLOB_UPLOAD_INVALID", f"The request body could not be read: {exc}. Bytes received "
                       "before the fault are kept; resume the upload from the offset GET reports.") from exc


def _commit(call: Call, name: str, upload_id: str, digest: str) -> Response:
    if not DIGEST.fullmatch(digest):
        raise OciError("DIGEST_INVALID", f"Invalid digest '{digest}'")
    uploads.place_ahead(call.services, upload_id, digest)

    def commit(ctx: Context) -> None:
        repo = repositories.get(ctx, name, for_update=True)
        uploads.commit(ctx, repo, uploads.get_upload(ctx, repo, upload_id, for_update=True), digest, exists_ok=True)

    call.run(commit, write=True)
    return _created(name, digest)


def start(call: Call, name: str) -> Response:
    mount, source = request.args.get("mount"), request.args.get("from")
    digest = request.args.get("digest")

    def begin(ctx: Context) -> str | None:
        repo = templates.for_push(ctx, name)  # a push may create the repository (create-on-push templates)
        if mount and source and call.services.may_mount() and _try_mount(ctx, repo, mount, source):
            return None
        return uploads.begin(ctx, repo).id

    upload_id = call.run(begin, write=True)
    if upload_id is None:
        return _created(name, mount)
    if digest is not None:  # monolithic upload: POST ?digest= with the whole blob as body
        _stream_in(call, name, upload_id)
        return _commit(call, name, upload_id, digest)
    return _progress(name, upload_id, 0)


def _try_mount(ctx: Context, target: Repository, digest: str, source: str) -> bool:
    """Mount a blob from another repository of this registry when ECR would (section 12.7):
    blob mounting enabled, the source readable and holding the blob, same encryption.
    Otherwise the client falls back to a normal upload, as the protocol allows."""
    if not DIGEST.fullmatch(digest) or source == target.name:
        return False
    if settings_store.account_setting(ctx, "BLOB_MOUNTING") != "ENABLED":
        return False
    src = repositories.find(ctx, source)
    if src is None or (src.encryption_type, src.kms_key) != (target.encryption_type, target.kms_key):
        return False
    return uploads.mount(ctx, target, src, digest)


def status(call: Call, name: str, upload_id: str) -> Response:
    return _progress(name, upload_id, _open_upload(call, name, upload_id), status=204)


def patch(call: Call, name: str, upload_id: str) -> Response:
    length = content_length()
    if length is not None and length <= SMALL_BODY:
        return _patch_small(call, name, upload_id, length)
    _open_upload(call, name, upload_id)
    return _progress(name, upload_id, _stream_in(call, name, upload_id, _range_check(name, upload_id, length)))


def _patch_small(call: Call, name: str, upload_id: str, length: int) -> Response:
    """A body small enough to hold is read whole first, then appended in the request's one unit
    of work (which finds the upload, checks the request's permissions and the Content-Range, and
    records the append): a streamed PATCH takes a unit to find the upload, one to take its lease
    and one to record, and docker sends each small layer in one PATCH."""
    check = _range_check(name, upload_id, length)
    try:
        data = b"".join(body_chunks(CHUNK))
    except BodyUnreadable as exc:
        raise OciError("BLOB_UPLOAD_INVALID", f"The request body could not be read: {exc}. Nothing of it was "
                       "kept; send it again from the offset GET reports.") from exc
    size = call.run(lambda ctx: uploads.append_read(ctx, repositories.get(ctx, name), upload_id, data, check),
                    write=True)
    if size is None:  # a streamed PATCH is writing to the upload: wait for it as a streamed append would
        size = _stream_in(call, name, upload_id, check, [data])
    return _progress(name, upload_id, size)


def _range_check(name: str, upload_id: str, length: int | None) -> Callable[[int], None] | None:
    """The request's Content-Range, if it sent one, as a check of the upload's recorded size. It is
    judged while the upload is held, after the upload was found, so two chunks cannot both claim
    the same offset and an unknown upload is reported as such whatever the header says."""
    content_range = request.headers.get("Content-Range")
    if not content_range:
        return None
    m = _CONTENT_RANGE.match(content_range.strip())

    def check(size: int) -> None:
        if not m:
            raise OciError("BLOB_UPLOAD_INVALID", f"Malformed Content-Range '{content_range}'")
        first, last = int(m[1]), int(m[2])
        held = {"Location": _location(name, upload_id), "Range": f"0-{max(size - 1, 0)}",
                "Docker-Upload-UUID": upload_id}
        if first != size or last < first:
            raise OciError("RANGE_INVALID", f"Content-Range {first}-{last} does not continue the upload at byte {size}",
                           headers=held)
        if length is not None and length != last - first + 1:
            raise OciError("RANGE_INVALID", "Content-Length does not match Content-Range", headers=held)

    return check


def finish(call: Call, name: str, upload_id: str) -> Response:
    digest = request.args.get("digest")
    if not digest:
        raise OciError("DIGEST_INVALID", "The digest query parameter is required to complete an upload")
    has_body = _has_body()
    if has_body or not DIGEST.fullmatch(digest) or call.services.blobs.slow_place:
        _open_upload(call, name, upload_id)  # before any byte is taken or placed: is it an upload of this repository
    # else the commit's one unit of work checks all that itself (and the request's permissions first)
    if has_body:
        _stream_in(call, name, upload_id)
    try:
        return _commit(call, name, upload_id, digest)
    except errors.InvalidLayerException as exc:
        raise OciError("DIGEST_INVALID", exc.message) from exc


def cancel(call: Call, name: str, upload_id: str) -> Response:
    def drop(ctx: Context) -> None:
        repo = repositories.get(ctx, name)
        uploads.cancel(ctx, repo, uploads.get_upload(ctx, repo, upload_id, for_update=True))

    call.run(drop, write=True)
    return Response(status=204, headers={"Content-Length": "0"})
