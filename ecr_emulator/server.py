"""Both listeners under one production WSGI server (gunicorn, threaded worker).

Worker processes (``--workers``, each with a pool of request threads) serve the API port and
the registry port; requests are routed to the right app by the port they arrived on. Workers
(and replicas on other hosts) share everything through the database and the blob store:
uploads and their leases, the emulator clock and the token secret are rows, so any worker can
serve any request and several processes use both CPU cores despite Python's global interpreter lock.
SIGTERM (or SIGINT) drains in-flight requests for up to ``graceful_timeout`` seconds before
exiting. Background job threads run inside each worker, beside the request threads; jobs are
claimed through the database, so each runs once.

Two settings come from measurements (``scripts/bench/registry.py``, against CNCF
Distribution on the same machine): kept-alive connections are served inline by the thread
that answered the previous request (see ``KeepAliveThreadWorker``), and ``sendfile`` is off
because blob bodies written in 4 MiB pieces reach local clients faster (see
``registry/blobs.py``).
"""

from __future__ import annotations

import logging
import select
import sys
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from ecr_emulator.config import Settings

log = logging.getLogger(__name__)

# Filled in the arbiter once the sockets are bound (port 0 resolves here), inherited by the
# worker through fork.
BOUND: dict[str, int] = {}


def build_wsgi(settings: Settings, api_port: int, registry_port: int):  # type: ignore[no-untyped-def]
    from ecr_emulator.api.app import create_app as create_api
    from ecr_emulator.core.bootstrap import build_services
    from ecr_emulator.registry.app import create_app as create_registry

    settings.api_port, settings.registry_port = api_port, registry_port
    services = build_services(settings, upgrade=False)
    api = create_api(services)
    registry = create_registry(services)

    def dispatch(environ: dict[str, Any], start_response):  # type: ignore[no-untyped-def]
        app = api if environ.get("SERVER_PORT") == str(api_port) else registry
        return app(environ, start_response)

    dispatch.services = services  # type: ignore[attr-defined]
    return dispatch


class KeepAliveThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, except that the thread that answered a kept-alive
    connection also serves its next request when that request follows at once.

    Why: stock gthread hands the connection back to the main thread's poller after every
    response, and the main thread hands it to the pool again when the next request arrives.
    Those two thread switches (and GIL hand-offs) cost 10-20% of a small registry request, and
    registry clients send requests back to back on one connection (a pull is a manifest GET
    followed at once by the config and layer GETs). So after a response the thread waits up to
    ``NEXT_REQUEST_WAIT_MS`` for the next request; if none comes, the connection goes back to
    the poller exactly as before. At most ``MAX_INLINE`` requests in a row are served this way,
    so one busy connection cannot hold a thread while others queue for the pool.

    Only a keep-alive result of exactly ``True`` (gunicorn >= 24) is acted upon; gunicorn 23
    returns a tuple and so keeps its stock behaviour.
    """

    NEXT_REQUEST_WAIT_MS = 1
    MAX_INLINE = 10

    def handle(self, conn):  # type: ignore[no-untyped-def]
        for _ in range(self.MAX_INLINE - 1):
            keepalive = super().handle(conn)
            if keepalive is not True or not self.alive or not self._next_request_ready(conn):
                return keepalive
        return super().handle(conn)

    def _next_request_ready(self, conn) -> bool:  # type: ignore[no-untyped-def]
        unreader = getattr(conn.parser, "unreader", None)
        if unreader is not None and unreader.buf.getvalue():  # pipelined bytes already read
            return True
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        return bool(poller.poll(self.NEXT_REQUEST_WAIT_MS))


class EmulatorServer(BaseApplication):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.services = None
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        cfg = {
            "bind": [f"{s.host}:{s.api_port}", f"{s.host}:{s.registry_port}"],
            "workers": max(s.workers, 1),
            "worker_class": KeepAliveThreadWorker,
            "threads": s.threads,
            "graceful_timeout": s.graceful_timeout,
            "timeout": 120,
            "keepalive": 30,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": s.log_level,
            "proc_name": "ecr-emulator",
            "when_ready": self._when_ready,
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
            "limit_request_line": 8190,
            "sendfile": False,  # blobs go out as 4 MiB writes: faster to local clients, see registry/blobs.py
        }
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: no shared ~/.gunicorn socket
            cfg["control_socket_disable"] = True
        for key, value in cfg.items():
            self.cfg.set(key, value)

    def _when_ready(self, arbiter) -> None:  # type: ignore[no-untyped-def]
        api, registry = (listener.sock.getsockname()[1] for listener in arbiter.LISTENERS)
        BOUND.update(api=api, registry=registry)
        host = self.settings.host
        print(f"ecr-emulator API listening on http://{host}:{api}", flush=True)
        print(f"ecr-emulator registry listening on http://{host}:{registry}", flush=True)
        print(f"ecr-emulator data in {self.settings.data_path}", flush=True)

    def load(self):  # type: ignore[no-untyped-def]
        app = build_wsgi(self.settings, BOUND["api"], BOUND["registry"])
        self.services = app.services
        return app

    def _post_worker_init(self, worker) -> None:  # type: ignore[no-untyped-def]
        from ecr_emulator.core.jobs import JobRunner

        services = self.services
        if services is not None:
            services.pulls.start()
        if services is not None and self.settings.job_workers > 0:
            runner = JobRunner(services)
            services.job_runner = runner
            runner.start(self.settings.job_workers, self.settings.job_poll_interval)

    def _worker_exit(self, server, worker) -> None:  # type: ignore[no-untyped-def]
        if self.services is not None and self.services.job_runner is not None:
            self.services.job_runner.stop()
        if self.services is not None:
            self.services.pulls.stop()


def serve(settings: Settings) -> int:
    from ecr_emulator.core.bootstrap import build_services

    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Migrate once, in the arbiter, before any worker starts serving.
    services = build_services(settings, upgrade=True)
    services.db.dispose()
    EmulatorServer(settings).run()
    return 0
