"""The API listener: ``POST /`` with ``X-Amz-Target``, plus the test-control routes."""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from flask import Flask, Response, request

from ecr_emulator.api import authorization, control, identity, protocol
from ecr_emulator.api.operations import OPERATIONS, load_all
from ecr_emulator.core import access, errors
from ecr_emulator.core.context import Services
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


def handle(
    services: Services, target: str | None, wire: sigv4.SignedRequest, body: bytes, origin: access.Origin
) -> tuple[dict, int, str]:
    """One API call, start to finish. Returns (body, status, operation name)."""
    op_name = "-"
    try:
        if not target or not target.startswith(protocol.TARGET_PREFIX):
            raise errors.UnknownOperationException(f"Unknown operation: {target!r}")
        op_name = target[len(protocol.TARGET_PREFIX):]
        if op_name not in protocol.operation_names():
            raise errors.UnknownOperationException(f"Unknown operation {op_name!r}")
        principal, scope = identity.identify(services, wire, body)
        op = OPERATIONS.get(op_name)
        if op is None:  # the honest answer whatever the input: this operation is not built yet
            raise errors.NotImplementedException(op_name)
        op_model = protocol.operation_model(op_name)
        params = protocol.validate_input(op_model, protocol.parse_body(body))
        scope = authorization.registry_scope(scope, params)
        with services.unit(scope, principal, write=op.write) as ctx:
            access.authorize(ctx, authorization.needs(op_name, params), origin)  # the API's one authorization seam
            result = op.fn(ctx, params)
        return protocol.serialize_output(op_model, result), 200, op_name
    except errors.EcrError as exc:
        return protocol.error_body(exc), exc.http_status, op_name
    except Exception:
        log.exception("internal error in %s", op_name)
        return {"__type": "ServerException", "message": "An internal error occurred in ecr-emulator."}, 500, op_name


def _signed_request() -> sigv4.SignedRequest:
    """The request as SigV4 covers it (the body hash is filled in only when signatures are verified)."""
    raw_path = (request.environ.get("RAW_URI") or request.path).split("?", 1)[0]
    query = request.query_string.decode("latin-1")
    return sigv4.SignedRequest(request.method, raw_path, query, tuple(request.headers.items()), "")


def create_app(services: Services) -> Flask:
    load_all()
    app = Flask("ecr_emulator.api")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024  # a 20 MiB part, base64-encoded, fits

    @app.post("/")
    def dispatch() -> Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        body, status, op_name = handle(
            services,
            request.headers.get("X-Amz-Target"),
            _signed_request(),
            request.get_data(cache=False),
            access.Origin.of(request.environ),
        )
        log.info("api %s %d %.1fms", op_name, status, (time.perf_counter() - started) * 1000)
        return _json(body, status, request_id)

    @app.errorhandler(413)
    def too_large(_exc: Exception) -> Response:
        return _json({"__type": "SerializationException", "message": "Request body too large"}, 413, str(uuid.uuid4()))

    if services.settings.control_api:
        app.register_blueprint(control.blueprint(services))
    return app
