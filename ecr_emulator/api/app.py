"""The API listener: ``POST /`` with ``X-Amz-Target``, plus the test-control routes."""

from __future__ import annotations

import json
import logging
import uuid
from http import HTTPStatus
from typing import Any

from flask import Flask, Response
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import ClientDisconnected, HTTPException
from werkzeug.wsgi import get_input_stream

from ecr_emulator.api import authorization, control, identity, protocol
from ecr_emulator.api.operations import OPERATIONS, load_all
from ecr_emulator.core import access, errors
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.iam import sigv4

log = logging.getLogger("ecr_emulator.api")
CONTENT_TYPE = "application/x-amz-json-1.1"


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def _payload(body: dict[str, Any], status: int, request_id: str) -> tuple[str, list[tuple[str, str]], bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data))), ("x-amzn-RequestId", request_id)]
    return f"{status} {_REASONS.get(status, 'UNKNOWN')}", headers, data


def _json(body: dict[str, Any], status: int, request_id: str) -> Response:
    status_line, headers, data = _payload(body, status, request_id)
    return Response(data, status=status_line, headers=headers)


def operation_of(target: str | None) -> str:
    """The model operation an ``X-Amz-Target`` names (UnknownOperationException otherwise)."""
    if not target or not target.startswith(protocol.TARGET_PREFIX):
        raise errors.UnknownOperationException(f"Unknown operation: {target!r}")
    op_name = target[len(protocol.TARGET_PREFIX):]
    if op_name not in protocol.operation_names():
        raise errors.UnknownOperationException(f"Unknown operation {op_name!r}")
    return op_name


def handle(
    services: Services, target: str | None, wire: sigv4.SignedRequest, body: bytes, origin: access.Origin
) -> tuple[dict, int, str]:
    """One API call, start to finish. Returns (body, status, operation name)."""
    op_name = "-"
    try:
        op_name = operation_of(target)
        principal, scope = identity.identify(services, wire, body)
        op = OPERATIONS.get(op_name)
        if op is None:  # the honest answer whatever the input: this operation is not built yet
            raise errors.NotImplementedException(op_name)
        op_model = protocol.operation_model(op_name)
        params = protocol.validate_input(op_model, protocol.parse_body(body))
        scope = authorization.registry_scope(scope, params)

        def run(ctx: Context) -> dict[str, Any]:
            access.authorize(ctx, authorization.needs(op_name, params), origin)  # the API's one authorization seam
            return op.fn(ctx, params)

        result = services.run(scope, principal, run, write=op.write)
        return protocol.serialize_output(op_model, result), 200, op_name
    except errors.EcrError as exc:
        return protocol.error_body(exc), exc.http_status, op_name
    except Exception as exc:
        storage = errors.from_storage_failure(exc)
        if storage is not None:
            log.error("%s failed: %s", op_name, storage.message)
            return protocol.error_body(storage), storage.http_status, op_name
        log.exception("internal error in %s", op_name)
        return {"__type": "ServerException", "message": "An internal error occurred in ecr-emulator."}, 500, op_name


def read_body(stream) -> bytes:  # type: ignore[no-untyped-def]
    """The request body, refused (413) past the limit whether or not the client sent a
    Content-Length: a chunked body is never cut short and then executed."""
    limit = protocol.MAX_BODY_BYTES
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise errors.RequestTooLarge(limit)
    return data


def signed_request(environ: dict[str, Any]) -> sigv4.SignedRequest:
    """The request as SigV4 covers it (the body hash is filled in only when signatures are verified)."""
    raw_path = (environ.get("RAW_URI") or environ.get("PATH_INFO") or "/").split("?", 1)[0]
    return sigv4.SignedRequest(environ.get("REQUEST_METHOD", ""), raw_path, environ.get("QUERY_STRING", ""),
                               tuple(EnvironHeaders(environ).items()), "")


class ApiApp:
    """The API listener's WSGI application. ``POST /`` (every ECR call) goes straight to ``handle``:
    Flask's request objects, contexts and URL map cost about a fifth of a small call, and the
    protocol needs none of them. Everything else (the test-control routes, other methods and
    paths) goes to a Flask app, which also answers ``POST /`` the same way should it get one."""

    def __init__(self, services: Services) -> None:
        load_all()
        self.services = services
        self.flask = Flask("ecr_emulator.api")
        self.flask.add_url_rule("/", "dispatch", lambda: self.dispatch, methods=["POST"])
        self.flask.register_error_handler(HTTPException, _http_error)
        if services.settings.control_api:
            self.flask.register_blueprint(control.blueprint(services))

    @property
    def url_map(self):  # type: ignore[no-untyped-def]
        return self.flask.url_map

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == "/" and environ.get("REQUEST_METHOD") == "POST":
            return self.dispatch(environ, start_response)
        return self.flask(environ, start_response)

    def dispatch(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        request_id = str(uuid.uuid4())
        try:
            data = read_body(get_input_stream(environ))
        except errors.RequestTooLarge as exc:
            body, status = protocol.error_body(exc), exc.http_status
        except ClientDisconnected:
            body, status = {"__type": "SerializationException", "message": "The request body ended early"}, 400
        else:
            body, status, _ = handle(self.services, environ.get("HTTP_X_AMZ_TARGET"), signed_request(environ), data,
                                     access.Origin.of(environ))
        status_line, headers, payload = _payload(body, status, request_id)
        start_response(status_line, headers)  # measured and logged around the app (ecr_emulator/observe.py)
        return [payload]


def create_app(services: Services) -> ApiApp:
    return ApiApp(services)


def _http_error(exc: HTTPException) -> Response:
    """Routing and protocol errors (unknown path, method, malformed request) in AWS's shape."""
    code = exc.code or 400
    shape = {404: "UnknownOperationException", 405: "UnknownOperationException"}.get(code, "SerializationException")
    return _json({"__type": shape, "message": exc.description or exc.name}, code, str(uuid.uuid4()))


def reject(status: int, message: str) -> Response:
    """A request refused before routing (``ecr_emulator/httpguard.py``), in AWS's shape."""
    return _json({"__type": "SerializationException", "message": message}, status, str(uuid.uuid4()))
