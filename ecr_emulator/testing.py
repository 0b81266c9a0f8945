"""ecr-emulator inside the calling process, for tests: ``with ecr_emulator.testing.server() as ecr:``.

The same application ``serve`` runs (``wsgi.bind`` + ``wsgi.build``: one build path), served
by threads of this process instead of gunicorn worker processes, on free loopback ports, with
its data in a temporary directory removed on exit. Werkzeug's threaded server (a Flask
dependency already) serves each listener; it starts in milliseconds and stops as quickly,
where forking worker processes would cost a second or more per test session. It is meant for
tests: one process, every request on a thread, in-flight requests cut off at ``stop()``.

``EcrEmulator`` hands out what a test needs: boto3 clients signed for any account and
region, a registry login (with an auth file skopeo, podman, docker and oras read), the
emulator clock, ``reset()`` and ``run_jobs()``. The pytest plugin (``pytest_plugin``) wraps it
in fixtures.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from ecr_emulator import tls, wsgi
from ecr_emulator.config import Settings

log = logging.getLogger("ecr_emulator.testing")

ACCESS_KEY = "testing"
SECRET_KEY = "testing"


class _Handler(WSGIRequestHandler):
    """Request lines and protocol errors go to our logger at debug level, not to stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug('%s "%s" %s', self.address_string(), self.requestline, code)

    def log(self, type: str, message: str, *args: Any) -> None:
        # malformed requests (a client probing for TLS on a plain port...); the app logs its own errors
        log.debug(message, *args)


class _Server(ThreadedWSGIServer):
    """Werkzeug's threaded server, remembering open connections so ``close_connections`` can
    end kept-alive ones (their threads would otherwise go on serving after a stop)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            connections = list(self._open)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass(frozen=True)
class RegistryLogin:
    """What ``aws ecr get-login-password | <client> login`` leaves behind."""

    registry: str  # host:port, as in repositoryUri
    username: str
    password: str
    auth_file: str | None = None  # where write_auth_file put it, when a fixture did

    @property
    def auth(self) -> str:
        return base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def auth_config(self) -> dict[str, Any]:
        """The ``auths`` document docker (``config.json``), podman, skopeo and oras all read."""
        return {"auths": {self.registry: {"auth": self.auth}}}

    def write_auth_file(self, path: str | Path) -> Path:
        """Write ``auth_config()`` to ``path`` (``skopeo --authfile``, ``REGISTRY_AUTH_FILE``,
        or ``config.json`` in a ``DOCKER_CONFIG`` directory)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.auth_config()))
        return path


class EcrEmulator:
    """A running emulator: addresses, clients, login, clock and test controls."""

    def __init__(self, settings: Settings, app: wsgi.WsgiApp, servers: list[_Server],
                 threads: list[threading.Thread], own_data_dir: bool) -> None:
        self.settings = settings
        self.services = app.services  # type: ignore[attr-defined]
        self._servers = servers
        self._threads = threads
        self._own_data_dir = own_data_dir
        self._session: Any = None
        self._stopped = False
        self.scheme = "https" if settings.tls else "http"

    # ---- where it is

    @property
    def _address(self) -> str:
        host = self.settings.host
        return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)

    @property
    def api_url(self) -> str:
        """``endpoint_url`` for boto3 / ``--endpoint-url`` for the aws CLI."""
        return f"{self.scheme}://{self._address}:{self.settings.api_port}"

    @property
    def registry(self) -> str:
        """host:port of the default registry, as repositoryUri names it."""
        return self.registry_for()

    def registry_for(self, account: str | None = None, region: str | None = None) -> str:
        """host:port of an (account, region)'s registry, as its repositoryUri names it."""
        from ecr_emulator.core.naming import Scope

        return self.services.hosts.host_for(Scope(account or self.settings.default_account,
                                                  region or self.settings.default_region))

    @property
    def registry_url(self) -> str:
        return f"{self.scheme}://{self._address}:{self.settings.registry_port}"

    @property
    def ca_bundle(self) -> str | None:
        """The local CA to trust (``verify=`` / ``AWS_CA_BUNDLE``) when serving HTTPS from it."""
        if not self.settings.tls:
            return None
        return self.settings.tls_cert or str(tls.ca_path(self.settings))

    def env(self, region: str | None = None, access_key: str = ACCESS_KEY) -> dict[str, str]:
        """Environment that points unmodified SDK code (``boto3.client("ecr")``) and the aws CLI here."""
        env = {
            "AWS_ENDPOINT_URL_ECR": self.api_url,
            "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": region or self.settings.default_region,
        }
        if self.ca_bundle:
            env["AWS_CA_BUNDLE"] = self.ca_bundle
        return env

    # ---- clients

    def client(self, service: str = "ecr", region: str | None = None, access_key: str = ACCESS_KEY) -> Any:
        """A boto3 client for this emulator; a 12-digit ``access_key`` is that account."""
        if self._session is None:
            import boto3  # a test dependency of the caller, not of the emulator

            self._session = boto3.session.Session()
        return self._session.client(
            service,
            endpoint_url=self.api_url,
            region_name=region or self.settings.default_region,
            aws_access_key_id=access_key,
            aws_secret_access_key=SECRET_KEY,
            verify=self.ca_bundle if self.ca_bundle else None,
        )

    def login(self, region: str | None = None, access_key: str = ACCESS_KEY) -> RegistryLogin:
        """Log in to the registry of ``access_key``'s account in ``region``, as ``aws ecr
        get-login-password`` would (the token lasts 12 hours of the emulator clock)."""
        data = self.client(region=region, access_key=access_key).get_authorization_token()["authorizationData"][0]
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        return RegistryLogin(data["proxyEndpoint"].split("://", 1)[-1], username, password)

    # ---- test controls (the same effects as the /_emulator API)

    @property
    def clock(self) -> Any:
        """The emulator clock: ``now()``, ``set(epoch)``, ``advance(seconds)``, ``reset()``."""
        return self.services.clock

    def reset(self) -> None:
        """Forget every repository, image, blob, job and setting; the clock back to real time."""
        from ecr_emulator.core.bootstrap import reset_all

        reset_all(self.services)
        self.services.clock.reset()

    def run_jobs(self) -> dict[str, int]:
        """Run every background job that is due now (scans, lifecycle runs, ...)."""
        from ecr_emulator.core.jobs import JobRunner

        return (self.services.job_runner or JobRunner(self.services)).run_due()

    def stop(self) -> None:
        """Stop serving (kept-alive connections included), stop job threads, remove a temporary data dir."""
        if self._stopped:
            return
        self._stopped = True
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]  # all at once
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        for server in self._servers:
            server.close_connections()
        for thread in self._threads:
            thread.join(5)
        if self.services.job_runner is not None:
            self.services.job_runner.stop()
            self.services.job_runner = None
        self.services.db.dispose()
        self.services.clock.close()
        if self._own_data_dir:
            shutil.rmtree(self.settings.data_path, ignore_errors=True)

    def __enter__(self) -> EcrEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(**settings: Any) -> EcrEmulator:
    """Start an emulator in this process. Keyword arguments are settings (``config.Settings``
    field names, e.g. ``default_account="210987654321"``, ``tls=True``,
    ``registry_port_map="111111111111/eu-west-1=0"``); ports default to free ones and the data
    directory to a temporary one that ``stop()`` removes."""
    own_data_dir = "data_dir" not in settings
    if own_data_dir:
        settings["data_dir"] = tempfile.mkdtemp(prefix="ecr-emulator-")
    settings.setdefault("host", "127.0.0.1")
    settings.setdefault("api_port", 0)
    settings.setdefault("registry_port", 0)
    config = Settings(**settings)
    listeners = wsgi.bind(config)
    try:
        app = wsgi.build(config)
        context = tls.server_context(config) if config.tls else None
        servers = [_Server(config.host, listener.port, app, _Handler, False, context, listener.sock.fileno())
                   for listener in listeners]
    finally:
        for listener in listeners:
            listener.sock.close()  # the servers hold their own duplicates
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
                                name=f"ecr-emulator-{s.port}") for s in servers]
    for thread in threads:
        thread.start()
    services = app.services  # type: ignore[attr-defined]
    if config.job_workers > 0:
        from ecr_emulator.core.jobs import JobRunner

        services.job_runner = JobRunner(services)
        services.job_runner.start(config.job_workers, config.job_poll_interval)
    return EcrEmulator(config, app, servers, threads, own_data_dir)


@contextmanager
def server(**settings: Any) -> Iterator[EcrEmulator]:
    """``with server() as ecr:`` a running emulator, stopped (and its data removed) on exit."""
    emulator = start(**settings)
    try:
        yield emulator
    finally:
        emulator.stop()
