"""Listings: tags (n/last/Link pagination), the catalog, and the OCI referrers API."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from flask import Response

from ecr_emulator.core import repositories
from ecr_emulator.core.images import query
from ecr_emulator.core.images import referrers as image_referrers
from ecr_emulator.core.manifests import OCI_INDEX
from ecr_emulator.core.naming import DIGEST
from ecr_emulator.registry.current import request
from ecr_emulator.registry.errors import OciError

if TYPE_CHECKING:
    from ecr_emulator.registry.app import Call

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def _page_args() -> tuple[int, str | None]:
    raw_n = request.args.get("n")
    n = DEFAULT_PAGE
    if raw_n is not None:
        if not (raw_n.isascii() and raw_n.isdigit()) or len(raw_n) > 9:
            raise OciError("UNSUPPORTED", f"Invalid parameter at 'maxResults' failed to satisfy constraint: "
                                          f"'n must be a non-negative integer, got {raw_n!r}'")
        n = int(raw_n)
        if n > MAX_PAGE:
            raise OciError(
                "UNSUPPORTED",
                "Invalid parameter at 'maxResults' failed to satisfy constraint: "
                "'Member must have value less than or equal to 1000'",
            )
    return n, request.args.get("last")


def _json_page(body: dict, path: str, n: int, items: list[str], more: bool) -> Response:
    resp = Response(json.dumps(body), status=200, content_type="application/json; charset=utf-8")
    if more and items:
        resp.headers["Link"] = f'<{path}?{urlencode({"n": n, "last": items[-1]})}>; rel="next"'
    return resp


def tags(call: Call, name: str) -> Response:
    n, last = _page_args()
    page, more = call.run(lambda ctx: query.tag_page(ctx, name, n, last))
    return _json_page({"name": name, "tags": page}, f"/v2/{name}/tags/list", n, page, more)


def catalog(call: Call) -> Response:
    n, last = _page_args()
    page, more = call.run(lambda ctx: repositories.name_page(ctx, n, last))
    return _json_page({"repositories": page}, "/v2/_catalog", n, page, more)


def referrers(call: Call, name: str, digest: str) -> Response:
    if not DIGEST.fullmatch(digest):
        raise OciError("DIGEST_INVALID", f"Invalid digest '{digest}'")
    artifact_type = request.args.get("artifactType")
    found = call.run(lambda ctx: image_referrers.descriptors(
        ctx, repositories.get(ctx, name), digest, [artifact_type] if artifact_type else None))
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
    resp = Response(json.dumps(body), status=200, content_type=OCI_INDEX)
    if artifact_type:
        resp.headers["OCI-Filters-Applied"] = "artifactType"
    return resp
