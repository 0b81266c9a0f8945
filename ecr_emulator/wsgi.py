"""The one WSGI application every server runs, and the sockets it listens on.

``serve`` (gunicorn worker processes) and ``ecr_emulator.testing`` (threads in the caller's
process) both do the same three steps: ``bind`` every listener (the API, the registry, one
more per ``--registry-port-map`` entry), ``build`` the application once (services, schema,
both planes), then serve those sockets. Binding first means port 0 is resolved before anything
names a port (``repositoryUri``, the routing below), and a port in use is one clear error
before any work is done.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ecr_emulator.config import Settings


class ListenError(Exception):
    """A listener's address cannot be bound (in use, not an address of this machine...)."""


@dataclass
class Listener:
    kind: str  # "api" or "registry"
    sock: socket.socket
    scope: tuple[str, str] | None = None  # (account, region) of a registry with a port of its own
    port: int = 0  # as bound (a server may take the socket over, so it is read once)

    def __post_init__(self) -> None:
        self.port = int(self.sock.getsockname()[1])

    def describe(self, scheme: str, host: str) -> str:
        what = "API" if self.kind == "api" else "registry"
        if self.scope:
            what += f" {self.scope[0]}/{self.scope[1]}"
        return f"ecr-emulator {what} listening on {scheme}://{host}:{self.port}"


def _listen(host: str, port: int, flag: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port} ({flag}): {exc.strerror or exc}") from exc
    return sock


def bind(settings: Settings) -> list[Listener]:
    """Listen on every port the settings name; ports given as 0 are written back as bound."""
    listeners: list[Listener] = []
    try:
        listeners.append(Listener("api", _listen(settings.host, settings.api_port, "--api-port")))
        listeners.append(Listener("registry", _listen(settings.host, settings.registry_port, "--registry-port")))
        for scope, port in settings.registry_ports.items():
            sock = _listen(settings.host, port, f"--registry-port-map {scope[0]}/{scope[1]}")
            listeners.append(Listener("registry", sock, scope))
    except ListenError:
        for listener in listeners:
            listener.sock.close()
        raise
    settings.api_port, settings.registry_port = listeners[0].port, listeners[1].port
    for listener in listeners[2:]:
        assert listener.scope is not None
        settings.registry_ports[listener.scope] = listener.port
    return listeners


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def build(settings: Settings) -> WsgiApp:
    """Services (schema prepared, vulnerability seed loaded) and both planes behind one dispatcher
    that picks the plane by the port a request arrived on. Call after ``bind``."""
    from ecr_emulator.api import protocol
    from ecr_emulator.api.app import create_app as create_api
    from ecr_emulator.core.bootstrap import build_services
    from ecr_emulator.registry.app import create_app as create_registry

    services = build_services(settings, upgrade=True)
    protocol.operation_names()  # load the service model once, before any fork or first request
    api, registry = observed(services, create_api(services), create_registry(services))
    api_port = str(settings.api_port)

    def dispatch(environ: dict[str, Any], start_response):  # type: ignore[no-untyped-def]
        app = api if environ.get("SERVER_PORT") == api_port else registry
        return app(environ, start_response)

    dispatch.services = services  # type: ignore[attr-defined]
    return dispatch


def observed(services, api, registry):  # type: ignore[no-untyped-def]
    """Both planes behind the raw-request checks (``ecr_emulator/httpguard.py``) and wrapped in the
    metrics, logging and health seam (``ecr_emulator/observe.py``); job runs reported to the metrics."""
    from ecr_emulator import metrics, observe
    from ecr_emulator.api import app as api_app
    from ecr_emulator.core.events import JobFinished
    from ecr_emulator.httpguard import guarded
    from ecr_emulator.registry import app as registry_app

    services.events.subscribe(JobFinished, metrics.job_done)
    return (observe.Observed(guarded(api, api_app.reject), "api", services, observe.api_endpoint(api)),
            observe.Observed(guarded(registry, registry_app.reject), "registry", services,
                             observe.registry_endpoint))
