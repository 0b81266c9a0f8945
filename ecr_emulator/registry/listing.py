"""Listings: tags (n/last/Link pagination), the catalog, and the OCI referrers API."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from flask import Response, request
from sqlalchemy import select

from ecr_emulator.core import repositories
from ecr_emulator.core.images import referrers as image_referrers
from ecr_emulator.core.manifests import OCI_INDEX
from ecr_emulator.core.naming import DIGEST
from ecr_emulator.registry.errors import OciError
from ecr_emulator.storage.models import Image, ImageTag, Repository

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
    with call.services.unit(call.caller.scope, call.caller.principal) as ctx:
        repo = repositories.get(ctx, name)
        stmt = (
            select(ImageTag.tag)
            .join(Image, Image.id == ImageTag.image_id)
            .where(ImageTag.repository_id == repo.id, Image.status == "ACTIVE")
            .order_by(ImageTag.tag)
            .limit(n + 1)
        )
        if last:
            stmt = stmt.where(ImageTag.tag > last)
        found = list(ctx.session.scalars(stmt)) if n else []
    page = found[:n]
    return _json_page({"name": name, "tags": page}, f"/v2/{name}/tags/list", n, page, len(found) > n)


def catalog(call: Call) -> Response:
    n, last = _page_args()
    scope = call.caller.scope
    with call.services.unit(scope, call.caller.principal) as ctx:
        stmt = (
            select(Repository.name)
            .where(Repository.account_id == scope.account_id, Repository.region == scope.region)
            .order_by(Repository.name)
            .limit(n + 1)
        )
        if last:
            stmt = stmt.where(Repository.name > last)
        found = list(ctx.session.scalars(stmt)) if n else []
    page = found[:n]
    return _json_page({"repositories": page}, "/v2/_catalog", n, page, len(found) > n)


def referrers(call: Call, name: str, digest: str) -> Response:
    if not DIGEST.fullmatch(digest):
        raise OciError("DIGEST_INVALID", f"Invalid digest '{digest}'")
    artifact_type = request.args.get("artifactType")
    with call.services.unit(call.caller.scope, call.caller.principal) as ctx:
        repo = repositories.get(ctx, name)
        found = image_referrers.descriptors(ctx, repo, digest, [artifact_type] if artifact_type else None)
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": found}
    resp = Response(json.dumps(body), status=200, content_type=OCI_INDEX)
    if artifact_type:
        resp.headers["OCI-Filters-Applied"] = "artifactType"
    return resp
