"""The test-control API (``/_emulator/...`` on the API listener): not part of ECR.

It lets tests, ours and our users', be deterministic: wipe all state, read/set/advance the
emulator clock, and run due background jobs now instead of waiting for the workers.
(``/_emulator/health`` is served by ``ecr_emulator/observe.py``, so it stays when this API is off.)
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

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


def blueprint(services: Services) -> Blueprint:
    bp = Blueprint("control", __name__, url_prefix="/_emulator")

    def clock_state() -> dict[str, float]:
        return {"now": services.clock.now(), "offset": services.clock.offset}

    @bp.post("/reset")
    def reset():  # type: ignore[no-untyped-def]
        reset_all(services)
        services.clock.reset()
        return jsonify({"reset": True, **clock_state()})

    @bp.get("/clock")
    def get_clock():  # type: ignore[no-untyped-def]
        return jsonify(clock_state())

    @bp.post("/clock")
    def set_clock():  # type: ignore[no-untyped-def]
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or len({"set", "advance", "reset"} & body.keys()) != 1:
            return jsonify({"error": 'send exactly one of {"set": epoch}, {"advance": seconds}, {"reset": true}'}), 400
        try:
            if "set" in body:
                services.clock.set(float(body["set"]))
            elif "advance" in body:
                services.clock.advance(float(body["advance"]))
            else:
                services.clock.reset()
        except (TypeError, ValueError):
            return jsonify({"error": "clock values must be numbers"}), 400
        return jsonify(clock_state())

    @bp.post("/jobs/run")
    def run_jobs():  # type: ignore[no-untyped-def]
        from ecr_emulator.core.jobs import JobRunner

        runner = services.job_runner or JobRunner(services)
        return jsonify(runner.run_due())

    @bp.post("/lifecycle/run")
    def run_lifecycle():  # type: ignore[no-untyped-def]
        from ecr_emulator.core.lifecycle.execute import run_all
        from ecr_emulator.core.naming import Scope

        body = request.get_json(silent=True) or {}
        scope = None
        if "account" in body or "region" in body:
            scope = Scope(str(body.get("account", services.settings.default_account)),
                          str(body.get("region", services.settings.default_region)))
        results = run_all(services, scope, body.get("repository"))
        return jsonify({"runs": [r.as_dict() for r in results]})

    @bp.get("/coverage")
    def get_coverage():  # type: ignore[no-untyped-def]
        return jsonify(coverage())

    return bp
