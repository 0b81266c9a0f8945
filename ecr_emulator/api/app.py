"""The API listener: ``POST /`` with ``X-Amz-Target``, plus the test-control routes."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from flask import Flask, Response, request

from ecr_emulator.api import control, identity, protocol
from ecr_emulator.api.operations import OPERATIONS, load_all
from ecr_emulator.core import errors
from ecr_emulator.core.context import Services
from ecr_emulator.core.naming import Scope, repository_arn

log = logging.getLogger("ecr_emulator.api")
CONTENT_TYPE = "application/x-amz-json-1.1"


def _json(body: dict[str, Any], status: int, request_id: str) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        content_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": request_id},
    )


def handle(services: Services, target: str | None, authorization: str | None, body: bytes) -> tuple[dict, int, str]:
    """One API call, start to finish. Returns (body, status, operation name)."""
    op_name = "-"
    try:
        if not target or not target.startswith(protocol.TARGET_PREFIX):
            raise errors.UnknownOperationException(f"Unknown operation: {target!r}")
        op_name = target[len(protocol.TARGET_PREFIX):]
        if op_name not in protocol.operation_names():
            raise errors.UnknownOperationException(f"Unknown operation {op_name!r}")
        principal, scope = identity.identify(services.settings, authorization)
        op = OPERATIONS.get(op_name)
        if op is None:  # the honest answer whatever the input: this operation is not built yet
            raise errors.NotImplementedException(op_name)
        op_model = protocol.operation_model(op_name)
        params = protocol.validate_input(op_model, protocol.parse_body(body))
        registry_id = params.get("registryId")
        if registry_id is not None and registry_id != principal.account_id:
            resource = repository_arn(Scope(registry_id, scope.region), params.get("repositoryName", "*"))
            raise errors.AccessDeniedException(
                f"User: {principal.access_key_id} (account {principal.account_id}) is not authorized to perform: "
                f"ecr:{op_name} on resource: {resource} because no resource-based policy allows the "
                f"ecr:{op_name} action"
            )
        with services.unit(scope, principal, write=op.write) as ctx:
            result = op.fn(ctx, params)
        return protocol.serialize_output(op_model, result), 200, op_name
    except errors.EcrError as exc:
        return protocol.error_body(exc), exc.http_status, op_name
    except Exception:
        log.exception("internal error in %s", op_name)
        return {"__type": "ServerException", "message": "An internal error occurred in ecr-emulator."}, 500, op_name


def create_app(services: Services) -> Flask:
    load_all()
    app = Flask("ecr_emulator.api")
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 * 1024  # a 20 MiB part, base64-encoded, fits

    @app.post("/")
    def dispatch() -> Response:
        request_id = str(uuid.uuid4())
        body, status, _ = handle(
            services,
            request.headers.get("X-Amz-Target"),
            request.headers.get("Authorization"),
            request.get_data(cache=False),
        )
        return _json(body, status, request_id)  # measured and logged around the app (ecr_emulator/observe.py)

    @app.errorhandler(413)
    def too_large(_exc: Exception) -> Response:
        return _json({"__type": "SerializationException", "message": "Request body too large"}, 413, str(uuid.uuid4()))

    if services.settings.control_api:
        app.register_blueprint(control.blueprint(services))
    return app
