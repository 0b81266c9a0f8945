"""The one seam per listener where requests are measured and logged, and where the operational
endpoints live (``/metrics`` and ``/healthz`` on both listeners, ``/_emulator/health`` on the API
listener), outside ``/v2``, unauthenticated, and whether or not the control API is on.

``Observed`` wraps a listener's WSGI app. It names each request by its ECR operation (API) or
by its registry route's stable name (``registry/app.py`` ROUTES), never by the raw path, and
records it when the response starts: a counter and a latency histogram, a log line, and on
the registry the bytes pushed (request bodies read by successful pushes) and pulled
(``Content-Length`` of successful manifest and blob GETs). It leaves the response iterable
untouched, so blob bodies still reach the server as its file wrapper.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from ecr_emulator import __version__, logs, metrics
from ecr_emulator.api import protocol
from ecr_emulator.api.app import ApiApp
from ecr_emulator.core.context import Services
from ecr_emulator.httpguard import problem
from ecr_emulator.registry.app import route

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
EndpointOf = Callable[[Environ], str]

UNMATCHED = "unmatched"
PULLS = frozenset({"manifest_get", "blob_get"})
PUSH_METHODS = frozenset({"POST", "PUT", "PATCH"})


def api_endpoint(app: ApiApp) -> EndpointOf:
    """An API request's name: its ECR operation (``unknown_operation`` for a target the model does not
    have), or the Flask endpoint of a control route (``control.reset``)."""

    def endpoint_of(environ: Environ) -> str:
        if problem(environ) is not None:  # refused before routing; routing it would raise
            return UNMATCHED
        if environ.get("PATH_INFO") != "/" or environ.get("REQUEST_METHOD") != "POST":  # not an ECR call
            try:
                name, _ = app.url_map.bind_to_environ(environ).match()
            except HTTPException:
                return UNMATCHED
            if name != "dispatch":
                return str(name)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        op = target.removeprefix(protocol.TARGET_PREFIX)
        return op if op != target and op in protocol.operation_names() else "unknown_operation"

    return endpoint_of


def registry_endpoint(environ: Environ) -> str:
    if problem(environ) is not None:
        return UNMATCHED
    endpoint, _, _ = route(environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", ""))
    return endpoint.name if endpoint is not None else UNMATCHED


class _CountingInput:
    """``wsgi.input`` that counts the bytes the application reads."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.count = 0

    def read(self, *args: Any) -> bytes:
        data = self._stream.read(*args)
        self.count += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data = self._stream.readline(*args)
        self.count += len(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines = self._stream.readlines(*args)
        self.count += sum(len(line) for line in lines)
        return lines

    def __iter__(self):  # type: ignore[no-untyped-def]
        for line in self._stream:
            self.count += len(line)
            yield line


class Observed:
    def __init__(self, app: Any, listener: str, services: Services, endpoint_of: EndpointOf) -> None:
        self.app = app
        self.listener = listener
        self.services = services
        self.endpoint_of = endpoint_of
        self.log = logging.getLogger(f"ecr_emulator.{listener}")
        self.scrape = metrics.scrape_registry(services)
        self.own: dict[str, Callable[[], tuple[str, list[tuple[str, str]], bytes]]] = {
            "/metrics": self._metrics, "/healthz": self._health}
        if listener == "api":
            self.own["/_emulator/health"] = self._health

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "")
        own = self.own.get(path)
        if own is not None:
            return self._serve_own(own, method, start_response)
        started = time.perf_counter()
        counted = None
        if self.listener == "registry" and method in PUSH_METHODS:
            counted = environ["wsgi.input"] = _CountingInput(environ["wsgi.input"])

        def observing_start_response(status: str, headers: list[tuple[str, str]], exc_info=None):  # type: ignore[no-untyped-def]
            self._record(environ, method, path, status.split(" ", 1)[0], headers, counted,
                         time.perf_counter() - started)
            return start_response(status, headers, exc_info)

        return self.app(environ, observing_start_response)

    def _record(self, environ: Environ, method: str, path: str, status: str, headers: list[tuple[str, str]],
                counted: _CountingInput | None, seconds: float) -> None:
        endpoint = self.endpoint_of(environ)
        metrics.request_done(self.listener, endpoint, status, seconds)
        ok = status.startswith("2")
        received = counted.count if counted is not None else 0
        sent = 0
        if ok and counted is not None and received:
            metrics.bytes_pushed(endpoint, received)
        if ok and method == "GET" and endpoint in PULLS:
            length = next((v for k, v in headers if k.lower() == "content-length"), "")
            sent = int(length) if length.isdigit() else 0
            metrics.bytes_pulled(endpoint, sent)
        if not self.log.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {"listener": self.listener, "method": method, "path": path, "endpoint": endpoint,
                                  "status": int(status) if status.isdigit() else status,
                                  "duration_ms": round(seconds * 1000, 3), "remote": environ.get("REMOTE_ADDR")}
        if received:
            fields["bytes_received"] = received
        if sent:
            fields["bytes_sent"] = sent
        request_id = next((v for k, v in headers if k.lower() == "x-amzn-requestid"), None)
        if request_id:
            fields["request_id"] = request_id
        what = endpoint if self.listener == "api" else f"{method} {logs.url_path(path)}"
        self.log.info("%s %s %s %.1fms", self.listener, what, status, seconds * 1000,
                      extra={logs.FIELDS: fields})

    # ---- the listener's own endpoints ----

    def _serve_own(self, handler, method: str, start_response: StartResponse) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
        if method not in ("GET", "HEAD"):
            start_response("405 METHOD NOT ALLOWED", [("Allow", "GET, HEAD"), ("Content-Length", "0")])
            return [b""]
        status, headers, body = handler()
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [b""] if method == "HEAD" else [body]

    def _metrics(self) -> tuple[str, list[tuple[str, str]], bytes]:
        return "200 OK", [("Content-Type", metrics.CONTENT_TYPE)], metrics.exposition(self.scrape)

    def _health(self) -> tuple[str, list[tuple[str, str]], bytes]:
        """Alive, and the database answers (503 naming the problem when it does not)."""
        body: dict[str, Any] = {"status": "ok", "listener": self.listener, "version": __version__,
                                "pid": os.getpid(), "now": self.services.clock.now()}
        status = "200 OK"
        try:
            self.services.db.run(lambda session: session.execute(text("SELECT 1")))
        except Exception as exc:
            body["status"], body["database"] = "unavailable", " ".join(str(exc).split())[:500]
            status = "503 SERVICE UNAVAILABLE"
        return status, [("Content-Type", "application/json")], json.dumps(body).encode()
