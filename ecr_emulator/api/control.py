"""The test-control API (``/_emulator/...`` on the API listener): not part of ECR.

It lets tests, ours and our users', be deterministic: wipe all state, read/set/advance the
emulator clock, and run due background jobs now instead of waiting for the workers.
(``/_emulator/health`` is served by ``ecr_emulator/observe.py``, so it stays when this API is off.)

It is open by design (no AWS credentials), so it must not be reachable from a web page the
developer happens to visit: every POST needs a JSON content type, which a cross-site "simple"
request cannot send without a CORS preflight we never answer, and a request from a foreign
``Origin`` is refused outright. ``--control-token`` adds a shared secret on top.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, jsonify, request

from ecr_emulator.api import protocol
from ecr_emulator.api.operations import OPERATIONS
from ecr_emulator.core.bootstrap import reset_all
from ecr_emulator.core.context import Services


def coverage() -> dict[str, Any]:
    names = protocol.operation_names()
    implemented = sorted(n for n in names if n in OPERATIONS)
    return {
        "model": f"botocore {protocol.model_source()['botocore']} (vendored)",
        "implemented": len(implemented),
        "total": len(names),
        "implementedOperations": implemented,
        "missingOperations": sorted(n for n in names if n not in OPERATIONS),
    }


LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _origin_allowed(origin: str, host: str | None) -> bool:
    """Same origin as the request, or a page served from this machine's loopback."""
    parsed = urlsplit(origin)
    if parsed.netloc and host and parsed.netloc.lower() == host.lower():
        return True
    return (parsed.hostname or "").lower() in LOOPBACK_HOSTS


def check_request(token: str) -> None:
    """Refuse what a foreign web page could send, and anything without the token when one is set."""
    if token:
        given = request.headers.get("X-Emulator-Token") or ""
        if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode()):
            raise Refused(403, "this emulator requires its control token in the X-Emulator-Token header")
    origin = request.headers.get("Origin")
    if origin is not None and not _origin_allowed(origin, request.headers.get("Host")):
        raise Refused(403, f"requests from origin {origin!r} may not use the control API")
    if request.method == "POST" and request.mimetype != "application/json":
        raise Refused(415, "control requests must be JSON: send Content-Type: application/json")


def json_body() -> dict[str, Any]:
    """The POST body as a JSON object ({} when empty); 400 for anything else."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Refused(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Refused(400, "the body must be a JSON object")
    return body


def blueprint(services: Services) -> Blueprint:
    bp = Blueprint("control", __name__, url_prefix="/_emulator")
    token = services.settings.control_token

    @bp.before_request
    def guard():  # type: ignore[no-untyped-def]
        check_request(token)

    @bp.errorhandler(Refused)
    def refused(exc: Refused):  # type: ignore[no-untyped-def]
        return jsonify({"error": exc.message}), exc.status

    def clock_state() -> dict[str, float]:
        return {"now": services.clock.now(), "offset": services.clock.offset}

    @bp.post("/reset")
    def reset():  # type: ignore[no-untyped-def]
        json_body()
        reset_all(services)
        services.clock.reset()
        return jsonify({"reset": True, **clock_state()})

    @bp.get("/clock")
    def get_clock():  # type: ignore[no-untyped-def]
        return jsonify(clock_state())

    @bp.post("/clock")
    def set_clock():  # type: ignore[no-untyped-def]
        body = json_body()
        if len({"set", "advance", "reset"} & body.keys()) != 1:
            return jsonify({"error": 'send exactly one of {"set": epoch}, {"advance": seconds}, {"reset": true}'}), 400
        try:
            if "set" in body:
                services.clock.set(body["set"])
            elif "advance" in body:
                services.clock.advance(body["advance"])
            elif body["reset"] is True:
                services.clock.reset()
            else:
                return jsonify({"error": 'send {"reset": true} to go back to real time'}), 400
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return jsonify(clock_state())

    @bp.post("/jobs/run")
    def run_jobs():  # type: ignore[no-untyped-def]
        from ecr_emulator.core.jobs import JobRunner

        body = json_body()
        limit = body.get("max", 10_000)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            return jsonify({"error": "max must be a positive integer"}), 400
        services.pulls.flush()
        runner = services.job_runner or JobRunner(services)
        return jsonify(runner.run_due(max_jobs=limit))

    @bp.post("/lifecycle/run")
    def run_lifecycle():  # type: ignore[no-untyped-def]
        from ecr_emulator.core.lifecycle.execute import run_all
        from ecr_emulator.core.naming import Scope

        body = json_body()
        for key in ("account", "region", "repository"):
            if key in body and not isinstance(body[key], str):
                return jsonify({"error": f"{key} must be a string"}), 400
        scope = None
        if "account" in body or "region" in body:
            scope = Scope(body.get("account", services.settings.default_account),
                          body.get("region", services.settings.default_region))
        results = run_all(services, scope, body.get("repository"))
        return jsonify({"runs": [r.as_dict() for r in results]})

    @bp.get("/signing/certificates")
    def signing_certificates():  # type: ignore[no-untyped-def]
        from ecr_emulator.core.signing import keys

        try:
            pem = keys.certificates(services, request.args.get("profile", ""), request.args.get("part", "chain"))
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        return Response(pem, mimetype="application/x-pem-file")

    @bp.get("/coverage")
    def get_coverage():  # type: ignore[no-untyped-def]
        return jsonify(coverage())

    return bp
