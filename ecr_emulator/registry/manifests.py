"""Manifests on the wire: GET/HEAD/PUT/DELETE by tag or digest, over the same ``core`` code as
PutImage, BatchGetImage and BatchDeleteImage."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from flask import Response

from ecr_emulator.core import errors, repositories, templates
from ecr_emulator.core.context import Context
from ecr_emulator.core.images import conversion, lookup, pulls, query
from ecr_emulator.core.images import delete as image_delete
from ecr_emulator.core.images import put as image_put
from ecr_emulator.core.naming import DIGEST
from ecr_emulator.registry.body import BodyUnreadable, body_chunks, content_length
from ecr_emulator.registry.current import request
from ecr_emulator.registry.errors import OciError

if TYPE_CHECKING:
    from ecr_emulator.registry.app import Call

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
OCI_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")


def _accepted() -> list[str]:
    header = ",".join(request.headers.getlist("Accept"))
    return [part.split(";", 1)[0].strip() for part in header.split(",") if part.strip()]


def get(call: Call, name: str, reference: str) -> Response:
    by_digest = DIGEST.fullmatch(reference) is not None
    found, now = call.run(lambda ctx: (query.for_pull(ctx, name, reference, by_digest), ctx.now))
    if found is None:
        raise OciError("MANIFEST_UNKNOWN", "Requested image not found")
    if found.status != "ACTIVE":
        raise OciError(
            "MANIFEST_UNKNOWN",
            f"The image with digest '{found.digest}' is {found.status.lower()} and cannot be pulled. "
            "Restore it to the STANDARD storage class with UpdateImageStorageClass first.",
        )
    raw, media_type, digest = found.manifest, found.media_type, found.digest
    if not by_digest:  # a pull by tag may be served in another format the client accepts
        converted = conversion.for_accepted(raw, media_type, _accepted(), digest)
        if converted is not None:
            raw, media_type, digest = converted
    if request.method == "GET" and pulls.due(found.last_pulled_at, now):
        call.services.pulls.note([(found.image_id, found.digest)], now, call.caller.principal.entity_arn)
    headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"'}
    body = b"" if request.method == "HEAD" else raw
    resp = Response(body, status=200, content_type=media_type, headers=headers)
    resp.headers["Content-Length"] = str(len(raw))  # after the body is set: HEAD names the manifest's size
    return resp


def _read_body() -> bytes:
    length = content_length()
    if length is not None and length > MAX_MANIFEST_BYTES:
        raise OciError("SIZE_INVALID", f"Manifests may not exceed {MAX_MANIFEST_BYTES} bytes")
    data = bytearray()
    try:
        for chunk in body_chunks(1024 * 1024):
            data += chunk
            if len(data) > MAX_MANIFEST_BYTES:
                raise OciError("SIZE_INVALID", f"Manifests may not exceed {MAX_MANIFEST_BYTES} bytes")
    except BodyUnreadable as exc:
        raise OciError("MANIFEST_INVALID", f"The request body could not be read: {exc}") from exc
    return bytes(data)


def put(call: Call, name: str, reference: str) -> Response:
    by_digest = DIGEST.fullmatch(reference) is not None
    if not by_digest and not OCI_TAG.fullmatch(reference):
        raise OciError("TAG_INVALID", f"Invalid tag '{reference}'")
    raw = _read_body()
    content_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip()
    declared = None if content_type in ("", "application/json", "application/octet-stream") else content_type
    def store(ctx: Context) -> tuple[str, str | None]:
        templates.for_push(ctx, name)  # a push may create the repository (create-on-push templates)
        result = image_put.put_image(ctx, name, raw, media_type=declared, tag=None if by_digest else reference,
                                     digest=reference if by_digest else None, idempotent=True)
        return result.image.digest, result.image.subject_digest

    try:
        digest, subject = call.run(store, write=True)
    except errors.ImageDigestDoesNotMatchException as exc:
        raise OciError("DIGEST_INVALID", exc.message) from exc
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest, "Content-Length": "0"}
    if subject:
        headers["OCI-Subject"] = subject
    return Response(status=201, headers=headers)


def delete(call: Call, name: str, reference: str) -> Response:
    by_digest = DIGEST.fullmatch(reference) is not None

    def remove(ctx: Context) -> None:
        repo = repositories.get(ctx, name, for_update=True)
        image = lookup.by_digest(ctx, repo, reference) if by_digest else lookup.by_tag(ctx, repo, reference)
        if image is None:
            raise OciError("MANIFEST_UNKNOWN", "Requested image not found")
        if by_digest:
            image_delete.delete_image(ctx, repo, image)
        else:
            image_delete.untag(ctx, repo, image, reference)

    call.run(remove, write=True)
    return Response(status=202, headers={"Content-Length": "0"})
