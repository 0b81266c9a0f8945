"""The registry listener: one route table for ``/v2``, ECR login on every request, OCI errors.

Repository names contain slashes, so routes are regular expressions over the whole path
(like Distribution's router) rather than a framework's URL rules; the listener is a plain WSGI
application over werkzeug's request (see ``registry/current.py`` for why). Responses are built
with Flask's ``Response`` class, a werkzeug response that needs no application: the content
types it defaults to stay as they were.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Response
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Request

from ecr_emulator.core import errors
from ecr_emulator.core.access import Origin
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.naming import is_valid_repository_name
from ecr_emulator.registry import auth, blobs, listing, manifests, uploads
from ecr_emulator.registry.access import Guarded, guard
from ecr_emulator.registry.current import serving
from ecr_emulator.registry.errors import OciError, from_core, http_oci_error, response

log = logging.getLogger("ecr_emulator.registry")

Handler = Callable[..., Response]
T = TypeVar("T")


@dataclass
class Call:
    """One authenticated registry request. ``services`` is guarded: the first unit of work a
    handler opens checks the request's permissions (``registry/access.py``)."""

    services: Guarded
    caller: auth.Caller

    def run(self, fn: Callable[[Context], T], *, write: bool = False) -> T:
        """``fn(ctx)`` in one unit of work of the caller's registry (run again if a concurrent
        writer got in the way: ``Services.run``)."""
        return self.services.run(self.caller.scope, self.caller.principal, fn, write=write)


def _base(call: Call) -> Response:
    return Response("{}", status=200, content_type="application/json; charset=utf-8")


NAME = r"(?P<name>[^?#]+?)"


@dataclass(frozen=True)
class Endpoint:
    """One method of one route: its handler, a stable name (for logs and metrics, never the raw
    path) and the ECR action it needs (ECR-BEHAVIOUR 12.2; None for the base /v2/ check)."""

    handler: Handler
    name: str
    action: str | None


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Endpoint]


def _route(pattern: str, **methods: tuple[Handler, str, str | None]) -> Route:
    return Route(re.compile(pattern), {m: Endpoint(*spec) for m, spec in methods.items()})


ROUTES: list[Route] = [
    _route(r"^/v2/?$", GET=(_base, "base", None), HEAD=(_base, "base", None)),
    _route(r"^/v2/_catalog$", GET=(listing.catalog, "catalog", "ecr:DescribeRepositories")),
    _route(rf"^/v2/{NAME}/tags/list$", GET=(listing.tags, "tags_list", "ecr:ListImages")),
    _route(
        rf"^/v2/{NAME}/manifests/(?P<reference>[^/]+)$",
        GET=(manifests.get, "manifest_get", "ecr:BatchGetImage"),
        HEAD=(manifests.get, "manifest_head", "ecr:BatchGetImage"),
        PUT=(manifests.put, "manifest_put", "ecr:PutImage"),
        DELETE=(manifests.delete, "manifest_delete", "ecr:BatchDeleteImage"),
    ),
    _route(rf"^/v2/{NAME}/blobs/uploads/?$", POST=(uploads.start, "upload_start", "ecr:InitiateLayerUpload")),
    _route(
        rf"^/v2/{NAME}/blobs/uploads/(?P<upload_id>[^/]+)$",
        GET=(uploads.status, "upload_status", "ecr:UploadLayerPart"),
        PATCH=(uploads.patch, "upload_patch", "ecr:UploadLayerPart"),
        PUT=(uploads.finish, "upload_finish", "ecr:CompleteLayerUpload"),
        DELETE=(uploads.cancel, "upload_cancel", "ecr:UploadLayerPart"),
    ),
    _route(
        rf"^/v2/{NAME}/blobs/(?P<digest>[^/]+)$",
        GET=(blobs.get, "blob_get", "ecr:GetDownloadUrlForLayer"),
        HEAD=(blobs.get, "blob_head", "ecr:BatchCheckLayerAvailability"),
        DELETE=(blobs.delete, "blob_delete", "ecr:BatchDeleteImage"),
    ),
    _route(rf"^/v2/{NAME}/referrers/(?P<digest>[^/]+)$", GET=(listing.referrers, "referrers", "ecr:BatchGetImage")),
]

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def route(path: str, method: str) -> tuple[Endpoint | None, dict[str, str], bool]:
    """(endpoint, path parameters, whether the path exists at all)."""
    for r in ROUTES:
        m = r.pattern.match(path)
        if m:
            return r.methods.get(method), m.groupdict(), True
    return None, {}, False


class RegistryApp:
    """The registry listener's WSGI application."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with serving(environ) as req:
            try:
                if req.method not in ALL_METHODS:
                    raise MethodNotAllowed(valid_methods=ALL_METHODS)
                answer = self.dispatch(req)
            except HTTPException as exc:  # what werkzeug refuses itself (a malformed request)
                answer = response(http_oci_error(exc.code or 400, exc.description or exc.name), req.method)
            except Exception as exc:  # noqa: BLE001 - answered as an OCI error, logged
                answer = self.internal(req, exc)
            answer.headers["Docker-Distribution-Api-Version"] = "registry/2.0"
        return answer(environ, start_response)

    def dispatch(self, req: Request) -> Response:
        services, full = self.services, req.path or "/"
        endpoint, params, known = route(full, req.method)
        try:
            if not known:
                raise OciError("UNSUPPORTED", f"{req.method} {full} is not a registry API route")
            # who is asking comes first, as on ECR: an anonymous request learns nothing else
            caller = blobs.presigned_caller(services, req, params) or auth.authenticate(services, req)
            if endpoint is None:
                raise OciError("UNSUPPORTED", f"{req.method} is not supported on {full}")
            name = params.get("name")
            if name is not None and not is_valid_repository_name(name):
                raise OciError("NAME_INVALID", f"Invalid repository name '{name}'")
            guarded = guard(  # the registry's one authorization seam
                services, endpoint.action, endpoint.name, params, req.args,
                uploads._has_body(), Origin.of(req.environ), caller.presigned,
            )
            answer = endpoint.handler(Call(guarded, caller), **params)
            guarded.ensure_checked()
            return answer
        except auth.Unauthorized:
            return auth.challenge(services, services.hosts.scope_from_host(req.headers.get("Host")))
        except OciError as exc:
            return response(exc, req.method)
        except errors.EcrError as exc:
            return response(from_core(exc), req.method)

    @staticmethod
    def internal(req: Request, exc: Exception) -> Response:
        storage = errors.from_storage_failure(exc)
        if storage is not None:
            log.error("%s %s failed: %s", req.method, req.path, storage.message)
            status = getattr(storage, "registry_status", 507)
            return response(OciError("UNKNOWN", storage.message, status=status), req.method)
        log.error("internal error on %s %s", req.method, req.path, exc_info=exc)
        err = OciError("UNKNOWN", "An internal error occurred in ecr-emulator.", status=500)
        return response(err, req.method)


def create_app(services: Services) -> RegistryApp:
    return RegistryApp(services)


def reject(status: int, message: str) -> Response:
    """A request refused before routing (``ecr_emulator/httpguard.py``), as an OCI error."""
    return response(http_oci_error(status, message))
