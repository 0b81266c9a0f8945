"""The registry listener: one route table for ``/v2``, ECR login on every request, OCI errors.

Repository names contain slashes, so routes are regular expressions over the whole path
(like Distribution's router) rather than Flask URL rules.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, request

from ecr_emulator.core import errors
from ecr_emulator.core.context import Services
from ecr_emulator.core.naming import is_valid_repository_name
from ecr_emulator.registry import auth, blobs, listing, manifests, uploads
from ecr_emulator.registry.errors import OciError, from_core, response

log = logging.getLogger("ecr_emulator.registry")

Handler = Callable[..., Response]


@dataclass
class Call:
    """One authenticated registry request."""

    services: Services
    caller: auth.Caller


def _base(call: Call) -> Response:
    return Response("{}", status=200, content_type="application/json; charset=utf-8")


NAME = r"(?P<name>[^?#]+?)"
ROUTES: list[tuple[re.Pattern[str], dict[str, Handler]]] = [
    (re.compile(r"^/v2/?$"), {"GET": _base, "HEAD": _base}),
    (re.compile(r"^/v2/_catalog$"), {"GET": listing.catalog}),
    (re.compile(rf"^/v2/{NAME}/tags/list$"), {"GET": listing.tags}),
    (
        re.compile(rf"^/v2/{NAME}/manifests/(?P<reference>[^/]+)$"),
        {"GET": manifests.get, "HEAD": manifests.get, "PUT": manifests.put, "DELETE": manifests.delete},
    ),
    (re.compile(rf"^/v2/{NAME}/blobs/uploads/?$"), {"POST": uploads.start}),
    (
        re.compile(rf"^/v2/{NAME}/blobs/uploads/(?P<upload_id>[^/]+)$"),
        {"GET": uploads.status, "PATCH": uploads.patch, "PUT": uploads.finish, "DELETE": uploads.cancel},
    ),
    (
        re.compile(rf"^/v2/{NAME}/blobs/(?P<digest>[^/]+)$"),
        {"GET": blobs.get, "HEAD": blobs.get, "DELETE": blobs.delete},
    ),
    (re.compile(rf"^/v2/{NAME}/referrers/(?P<digest>[^/]+)$"), {"GET": listing.referrers}),
]

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def route(path: str, method: str) -> tuple[Handler | None, dict[str, str], bool]:
    """(handler, path parameters, whether the path exists at all)."""
    for pattern, methods in ROUTES:
        m = pattern.match(path)
        if m:
            return methods.get(method), m.groupdict(), True
    return None, {}, False


def create_app(services: Services) -> Flask:
    app = Flask("ecr_emulator.registry")
    app.url_map.strict_slashes = False

    def dispatch(path: str = "") -> Response:
        full = "/" + path
        handler, params, known = route(full, request.method)
        try:
            if not known:
                raise OciError("UNSUPPORTED", f"{request.method} {full} is not a registry API route")
            # who is asking comes first, as on ECR: an anonymous request learns nothing else
            caller = blobs.presigned_caller(services, request, params) or auth.authenticate(services, request)
            if handler is None:
                raise OciError("UNSUPPORTED", f"{request.method} is not supported on {full}")
            name = params.get("name")
            if name is not None and not is_valid_repository_name(name):
                raise OciError("NAME_INVALID", f"Invalid repository name '{name}'")
            return handler(Call(services, caller), **params)
        except auth.Unauthorized:
            return auth.challenge(services, services.hosts.scope_from_host(request.headers.get("Host")))
        except OciError as exc:
            return response(exc, request.method)
        except errors.EcrError as exc:
            return response(from_core(exc), request.method)

    app.add_url_rule("/", "root", dispatch, methods=ALL_METHODS)
    app.add_url_rule("/<path:path>", "any", dispatch, methods=ALL_METHODS)

    @app.after_request
    def common_headers(resp: Response) -> Response:
        resp.headers["Docker-Distribution-Api-Version"] = "registry/2.0"
        return resp

    @app.errorhandler(Exception)
    def internal(exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.path)
        err = OciError("UNSUPPORTED", "An internal error occurred in ecr-emulator.")
        resp = response(err, request.method)
        resp.status_code = 500
        return resp

    return _logged(app)


def _logged(app: Flask):  # type: ignore[no-untyped-def]
    """Request logging that leaves the response iterable untouched, so the server still sees the
    blob file wrapper (streamed in large pieces, or sent with sendfile where enabled)."""

    def middleware(environ, start_response):  # type: ignore[no-untyped-def]
        started = time.perf_counter()

        def logging_start_response(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
            log.info(
                "registry %s %s %s %.1fms",
                environ.get("REQUEST_METHOD"),
                environ.get("PATH_INFO"),
                status.split(" ", 1)[0],
                (time.perf_counter() - started) * 1000,
            )
            return start_response(status, headers, exc_info)

        return app(environ, logging_start_response)

    middleware.flask_app = app  # type: ignore[attr-defined]
    return middleware
