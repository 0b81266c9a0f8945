"""The API listener: ``POST /`` with ``X-Amz-Target``, plus the test-control routes."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import ClientDisconnected, HTTPException

from ecr_emulator.api import authorization, control, identity, protocol
from ecr_emulator.api.operations import OPERATIONS, load_all
from ecr_emulator.core import access, errors
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.iam import sigv4

log = logging.getLogger("ecr_emulator.api")
CONTENT_TYPE = "application/x-amz-json-1.1"


def _json(body: dict[str, Any], status: int, request_id: str) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        content_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )


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


def _signed_request() -> sigv4.SignedRequest:
    """The request as SigV4 covers it (the body hash is filled in only when signatures are verified)."""
    raw_path = (request.environ.get("RAW_URI") or request.path).split("?", 1)[0]
    query = request.query_string.decode("latin-1")
    return sigv4.SignedRequest(request.method, raw_path, query, tuple(request.headers.items()), "")


def create_app(services: Services) -> Flask:
    load_all()
    app = Flask("ecr_emulator.api")

    @app.post("/")
    def dispatch() -> Response:
        request_id = str(uuid.uuid4())
        target = request.headers.get("X-Amz-Target")
        try:
            data = read_body(request.stream)
        except errors.RequestTooLarge as exc:
            return _json(protocol.error_body(exc), exc.http_status, request_id)
        except ClientDisconnected:
            return _json({"__type": "SerializationException", "message": "The request body ended early"}, 400,
                         request_id)
        body, status, _ = handle(services, target, _signed_request(), data, access.Origin.of(request.environ))
        return _json(body, status, request_id)  # measured and logged around the app (ecr_emulator/observe.py)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        """Routing and protocol errors (unknown path, method, malformed request) in AWS's shape."""
        code = exc.code or 400
        shape = {404: "UnknownOperationException", 405: "UnknownOperationException"}.get(code, "SerializationException")
        return _json({"__type": shape, "message": exc.description or exc.name}, code, str(uuid.uuid4()))

    if services.settings.control_api:
        app.register_blueprint(control.blueprint(services))

    return app


def reject(status: int, message: str) -> Response:
    """A request refused before routing (``ecr_emulator/httpguard.py``), in AWS's shape."""
    return _json({"__type": "SerializationException", "message": message}, status, str(uuid.uuid4()))
