"""Both listeners under one production WSGI server (gunicorn, threaded worker).

Worker processes (``--workers``, each with a pool of request threads) serve the API port and
the registry port; requests are routed to the right app by the port they arrived on. Workers
(and replicas on other hosts) share everything through the database and the blob store:
uploads and their leases, the emulator clock and the token secret are rows, so any worker can
serve any request and several processes use both CPU cores despite Python's global interpreter lock.
SIGTERM (or SIGINT) drains in-flight requests for up to ``graceful_timeout`` seconds before
exiting.

Start-up does the slow work once, in the arbiter, before forking: bind the sockets (port 0
resolved), prepare the schema, import every module and load the service model
(``wsgi.build``); workers fork with all of it and are serving within milliseconds. Stopping an
idle server takes a fraction of a second: idle kept-alive connections are closed at once, job
threads are woken rather than waited for, and processes skip the interpreter's teardown.

Background job threads run inside each worker, beside the request threads; jobs are claimed
through the database, so each runs once.

Two settings come from measurements (``scripts/bench/registry.py``, against CNCF
Distribution on the same machine): kept-alive connections are served inline by the thread
that answered the previous request (see ``KeepAliveThreadWorker``), and ``sendfile`` is off
because blob bodies written in 4 MiB pieces reach local clients faster (see
``registry/blobs.py``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import select
import signal
import socket
import sys
import time

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import ThreadWorker

from ecr_emulator import logs, tls, wsgi
from ecr_emulator.config import Settings
from ecr_emulator.multiprocess import Run
from ecr_emulator.wsgi import Listener, WsgiApp

log = logging.getLogger(__name__)


_CORK = getattr(socket, "TCP_CORK", None)  # Linux


def _cork(sock: socket.socket, on: int) -> bool:
    """Cork or uncork a TCP socket; False where that cannot be done (another OS, a closed socket)."""
    if _CORK is None:
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _CORK, on)
    except OSError:
        return False
    return True


class KeepAliveThreadWorker(ThreadWorker):
    """gunicorn's threaded worker, except that the thread that answered a kept-alive
    connection also serves its next request when that request follows at once.

    Why: stock gthread hands the connection back to the main thread's poller after every
    response, and the main thread hands it to the pool again when the next request arrives.
    Those two thread switches (and GIL hand-offs) cost 10-20% of a small registry request, and
    registry clients send requests back to back on one connection (a pull is a manifest GET
    followed at once by the config and layer GETs; an SDK client sends its next call a
    millisecond or so after the last answer). So after a response the thread waits up to
    ``NEXT_REQUEST_WAIT_MS`` for the next request, a millisecond at a time, and stops waiting as
    soon as another connection is queued for a thread; if none comes, the connection goes back
    to the poller exactly as before. At most ``MAX_INLINE`` requests in a row are served this
    way, so one busy connection cannot hold a thread while others queue for the pool.

    Only a keep-alive result of exactly ``True`` (gunicorn >= 24) is acted upon; gunicorn 23
    returns a tuple and so keeps its stock behaviour.

    A worker also stops accepting connections while every one of its request threads is busy
    (``_busy``), and starts again when one is free. Stock gthread accepts whatever it can, so
    when a client opened several connections at once, one worker process could take all of
    them while the other idled: 16 connections of manifest GETs ran at 400-700 req/s in such
    runs against 1,900-2,900 when both workers had their share (``scripts/bench/registry.py``,
    one run in three). Connections beyond the threads now wait in the kernel's queue, where the
    other worker takes them, rather than in this worker's; a thread serving a kept-alive
    connection gives way to them as it does to connections queued for the pool.
    """

    NEXT_REQUEST_WAIT_MS = 4
    MAX_INLINE = 10
    _busy = 0  # connections handed to request threads and not yet back (main thread only)

    def enqueue_req(self, conn):  # type: ignore[no-untyped-def]
        """A new connection or a kept-alive one with a request goes to the pool: when that
        takes the last free thread, stop accepting."""
        self._busy += 1
        super().enqueue_req(conn)
        if self._busy >= self.cfg.threads:
            self.set_accept_enabled(False)

    def finish_request(self, conn, fs):  # type: ignore[no-untyped-def]
        self._busy -= 1
        super().finish_request(conn, fs)

    def set_accept_enabled(self, enabled):  # type: ignore[no-untyped-def]
        """gunicorn's loop asks for accepting again whenever it is off and the connection limit
        allows it; it stays off while every request thread is busy."""
        super().set_accept_enabled(enabled and self._busy < self.cfg.threads)

    def handle_request(self, req, conn):  # type: ignore[no-untyped-def]
        """The response leaves in one piece: gunicorn writes the head and the body with separate
        sends, which put two segments on the wire and make a client read twice. Corking the
        socket for the response holds partial segments until it is complete (full segments of a
        large body still go at once). Not when the client waits for ``100 Continue`` before it
        sends the body: that must not wait for the response."""
        corked = not any(name == "EXPECT" for name, _ in req.headers) and _cork(conn.sock, 1)
        try:
            return super().handle_request(req, conn)
        finally:
            if corked:
                _cork(conn.sock, 0)

    def handle(self, conn):  # type: ignore[no-untyped-def]
        for _ in range(self.MAX_INLINE - 1):
            keepalive = super().handle(conn)
            if keepalive is not True or not self.alive or not self._next_request_ready(conn):
                return keepalive
        return super().handle(conn)

    # A stopping worker closes idle kept-alive connections after this long (gunicorn: 2 s), so
    # that stopping an idle server, as every test fixture does, takes a fraction of a second.
    STOP_KEEPALIVE_LINGER = 0.1

    def _cap_keepalive(self, deadline):  # type: ignore[no-untyped-def]
        super()._cap_keepalive(min(deadline, time.monotonic() + self.STOP_KEEPALIVE_LINGER))

    def _next_request_ready(self, conn) -> bool:  # type: ignore[no-untyped-def]
        unreader = getattr(conn.parser, "unreader", None)
        if unreader is not None and unreader.buf.getvalue():  # pipelined bytes already read
            return True
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        for _ in range(self.NEXT_REQUEST_WAIT_MS):
            if self._others_waiting():
                return bool(poller.poll(0))
            if poller.poll(1):
                return True
        return False

    def _others_waiting(self) -> bool:
        """Whether a connection waits for a free request thread: in gunicorn's pool queue, or not
        yet accepted while this worker has stopped accepting."""
        queue = getattr(self.tpool, "_work_queue", None)
        if queue is not None and not queue.empty():
            return True
        if self._accepting:
            return False
        try:
            return bool(select.select(self.sockets, [], [], 0)[0])
        except (OSError, ValueError):  # a listener closed meanwhile (the worker is stopping)
            return False


class EmulatorServer(BaseApplication):
    """gunicorn over sockets we bound and an application we built, both before forking."""

    def __init__(self, settings: Settings, app: WsgiApp, listeners: list[Listener],
                 metrics_run: Run | None = None) -> None:
        self.settings = settings
        self.app = app
        self.metrics_run = metrics_run
        self.services = app.services  # type: ignore[attr-defined]
        self.listeners = listeners
        self.fds = [listener.sock.detach() for listener in listeners]  # gunicorn owns the sockets now
        super().__init__()

    def load_config(self) -> None:
        s = self.settings
        cfg = {
            "bind": [f"fd://{fd}" for fd in self.fds],
            "workers": max(s.workers, 1),
            "worker_class": KeepAliveThreadWorker,
            "threads": s.threads,
            "graceful_timeout": s.graceful_timeout,
            "timeout": 120,
            "keepalive": 30,
            "accesslog": None,
            "errorlog": "-",
            "loglevel": s.log_level,
            "logger_class": logs.gunicorn_logger(s.log_format),
            "child_exit": self._child_exit,
            "proc_name": "ecr-emulator",
            "when_ready": self._when_ready,
            "post_fork": self._post_fork,
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
            "limit_request_line": 8190,
            "sendfile": False,  # blobs go out as 4 MiB writes: faster to local clients, see registry/blobs.py
        }
        if s.tls:
            cfg["certfile"], cfg["keyfile"] = tls.server_files(s)
        if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: no shared ~/.gunicorn socket
            cfg["control_socket_disable"] = True
        for key, value in cfg.items():
            self.cfg.set(key, value)

    def _when_ready(self, arbiter) -> None:  # type: ignore[no-untyped-def]
        scheme = "https" if self.settings.tls else "http"
        for listener in self.listeners:
            print(listener.describe(scheme, self.settings.host), flush=True)
        print(f"ecr-emulator data in {self.settings.data_path}", flush=True)
        if self.settings.tls and not self.settings.tls_cert:
            print(f"ecr-emulator TLS certificates from the local CA {tls.ca_path(self.settings)} "
                  "(trust it: see README, TLS)", flush=True)

    def load(self):  # type: ignore[no-untyped-def]
        return self.app

    def _post_fork(self, server, worker) -> None:  # type: ignore[no-untyped-def]
        # Until the worker installs its own handlers it still has the arbiter's, which only queue
        # the signal for an arbiter loop this process never runs: a SIGTERM arriving while a worker
        # boots would be lost and the stop would wait out the whole graceful timeout. A worker
        # that has not served anything yet may just die instead.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)

    def _post_worker_init(self, worker) -> None:  # type: ignore[no-untyped-def]
        from ecr_emulator.core.jobs import JobRunner

        self.services.pulls.start()  # threads do not survive the fork: each worker starts its own
        if self.settings.job_workers > 0:
            runner = JobRunner(self.services)
            self.services.job_runner = runner
            runner.start(self.settings.job_workers, self.settings.job_poll_interval)

    def _child_exit(self, arbiter, worker) -> None:  # type: ignore[no-untyped-def]
        if self.metrics_run is not None:
            self.metrics_run.worker_exited(worker.pid)

    def _worker_exit(self, server, worker) -> None:  # type: ignore[no-untyped-def]
        if self.services.job_runner is not None:
            self.services.job_runner.stop()
        self.services.pulls.stop()  # write the pull times noted so far
        exiting = sys.exc_info()[1]  # gunicorn calls this hook on its way to sys.exit(status)
        if isinstance(exiting, SystemExit) and exiting.code in (0, None):
            self.services.db.dispose()
            _exit_now(0)


def _exit_now(status: int) -> None:
    """Exit without the interpreter's teardown: freeing every module of a process that loaded
    SQLAlchemy, Flask and botocore took 0.2-0.5 s here, the larger part of stopping an idle
    server. Everything that matters (database connections, logs) is closed or flushed first."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# glibc's mallopt parameters, and the values the server sets (see _tune_malloc)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
MALLOC_MMAP_THRESHOLD = 16 * 1024 * 1024
MALLOC_TRIM_THRESHOLD = 32 * 1024 * 1024
_MALLOC_ENVIRONMENT = ("GLIBC_TUNABLES", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


def _tune_malloc() -> None:
    """Keep freed request buffers in the process rather than handing them back to the kernel.

    A blob body arrives in 1 MiB pieces, each a new buffer (gunicorn's reads, then ours). With
    glibc's defaults the memory freed after each piece went back to the kernel (a trimmed heap
    top, or an unmapped block) and the next piece faulted it in afresh: 108,000 page faults per
    256 MiB push, a quarter to half of the push's system time. With blocks up to 16 MiB taken
    from the heap and up to 32 MiB of free heap kept, a push faults a few hundred to 3,700
    times, and monolithic pushes ran 1.6-1.8x as fast (four alternations of four pushes each).
    Set before the workers fork, so they inherit it; left alone where the user tunes malloc
    through the environment, and a no-op outside glibc."""
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in _MALLOC_ENVIRONMENT):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)


def serve(settings: Settings) -> int:
    logs.configure(settings.log_level, settings.log_format)
    _tune_malloc()
    try:
        if settings.tls:
            tls.server_files(settings)  # make the CA and certificate now, once, before any worker
        listeners = wsgi.bind(settings)
    except (ValueError, wsgi.ListenError) as exc:
        print(f"ecr-emulator: {exc}", file=sys.stderr)
        return 2
    metrics_run = Run()  # before anything imports prometheus_client: workers share one directory
    try:
        # Migrate, seed and import everything once, here; workers fork with it all loaded.
        app = wsgi.build(settings)
        app.services.db.dispose()  # type: ignore[attr-defined]  # no database connection crosses the fork
        try:
            EmulatorServer(settings, app, listeners, metrics_run).run()
        except SystemExit as exc:  # gunicorn's arbiter ends with sys.exit(status)
            if exc.code not in (0, None):
                raise
    finally:
        metrics_run.finish()
    _exit_now(0)
    return 0
