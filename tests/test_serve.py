"""The server command itself: settings and --help, free ports, logging, SIGTERM draining."""

from __future__ import annotations

import hashlib
import os
import platform
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from ecr_emulator.config import SETTINGS
from tests.conftest import make_client
from tests.server import start_server


def test_help_documents_every_setting():
    out = subprocess.run([sys.executable, "-m", "ecr_emulator", "serve", "--help"], capture_output=True,
                         text=True, check=True).stdout
    flat = " ".join(out.split())
    for s in SETTINGS:
        assert "--" + s.name.replace("_", "-") in out, s.name
        assert "ECR_EMULATOR_" + s.name.upper() in flat, s.name


def test_environment_variables_configure_the_server(tmp_path):
    live = start_server(tmp_path / "env", env={"ECR_EMULATOR_DEFAULT_ACCOUNT": "210987654321",
                                               "ECR_EMULATOR_DEFAULT_REGION": "eu-central-1",
                                               "ECR_EMULATOR_REGISTRY_HOST": "registry.example.test:443"})
    try:
        ecr = make_client(live, region="eu-central-1")
        repo = ecr.create_repository(repositoryName="envy")["repository"]
        assert repo["registryId"] == "210987654321"
        assert repo["repositoryUri"] == "registry.example.test:443/envy"
        assert "api CreateRepository 200" in live.log()
    finally:
        live.stop()


def test_sigterm_drains_in_flight_requests(tmp_path):
    live = start_server(tmp_path / "drain", "--graceful-timeout", "30")
    ecr = make_client(live)
    ecr.create_repository(repositoryName="slow")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    headers = {"Authorization": f"Basic {token}"}
    start = requests.post(f"{live.registry_url}/v2/slow/blobs/uploads/", headers=headers, timeout=10)
    location = live.registry_url + start.headers["Location"]
    result: dict = {}
    sent = threading.Event()

    def slow_body():
        for _ in range(10):
            yield b"x" * 1024
            sent.set()
            time.sleep(0.3)

    def upload():
        result["resp"] = requests.patch(location, data=slow_body(), headers=headers, timeout=60)

    t = threading.Thread(target=upload)
    t.start()
    sent.wait(10)
    live.process.send_signal(signal.SIGTERM)
    t.join(60)
    assert live.process.wait(60) == 0
    assert result["resp"].status_code == 202
    assert result["resp"].headers["Range"] == f"0-{10 * 1024 - 1}"
    # ...and new connections are refused once it has stopped
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{live.api_url}/_emulator/health", timeout=2)


def test_port_zero_prints_the_ports(tmp_path):
    live = start_server(tmp_path / "ports")
    try:
        log = live.log()
        assert f"API listening on http://127.0.0.1:{live.api_port}" in log
        assert f"registry listening on http://127.0.0.1:{live.registry_port}" in log
        repo = make_client(live).create_repository(repositoryName="p0")["repository"]
        assert repo["repositoryUri"] == f"localhost:{live.registry_port}/p0"
    finally:
        live.stop()


# ---- the request thread that waits for a kept-alive connection's next request


def _lingering(wait_ms: int):  # type: ignore[no-untyped-def]
    """A request thread's view of one idle kept-alive connection and of gunicorn's queue of
    connections waiting for a thread."""
    import queue
    import socket
    from types import SimpleNamespace

    from ecr_emulator.server import KeepAliveThreadWorker

    ours, client = socket.socketpair()
    waiting: queue.SimpleQueue = queue.SimpleQueue()
    worker = SimpleNamespace(NEXT_REQUEST_WAIT_MS=wait_ms, tpool=SimpleNamespace(_work_queue=waiting),
                             _accepting=True, sockets=[])
    worker._others_waiting = lambda: KeepAliveThreadWorker._others_waiting(worker)  # type: ignore[attr-defined]
    conn = SimpleNamespace(parser=None, sock=ours)

    def ready() -> tuple[bool, float]:
        started = time.monotonic()
        found = KeepAliveThreadWorker._next_request_ready(worker, conn)  # type: ignore[arg-type]
        return found, time.monotonic() - started

    return ready, client, waiting


def test_a_lingering_thread_takes_the_next_request_and_gives_way_to_a_waiting_connection():
    ready, client, waiting = _lingering(5000)
    threading.Timer(0.1, client.send, [b"GET / HTTP/1.1\r\n"]).start()
    found, took = ready()
    assert found and took < 2  # the next request came while the thread waited: served inline

    ready, client, waiting = _lingering(5000)
    threading.Timer(0.1, waiting.put, ["another connection"]).start()
    found, took = ready()
    assert not found and took < 2  # another connection needs the thread: it stops waiting at once

    ready, client, waiting = _lingering(30)
    found, took = ready()
    assert not found and took >= 0.025  # nobody else waits and no request comes: back to the poller after the wait


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[7])


@pytest.mark.skipif(sys.platform != "linux" or platform.libc_ver()[0] != "glibc",
                    reason="the server tunes glibc's malloc; page faults are read from /proc")
def test_a_pushed_body_does_not_fault_its_buffers_in_afresh(tmp_path):
    """Request buffers freed after each 1 MiB piece of a body stay in the worker (mallopt at
    start): with glibc's defaults about half of the 64 MiB pushes faulted some 27,000 pages in
    again; tuned, none faults more than about 1,300."""
    live = start_server(tmp_path / "data", "--workers", "1")
    try:
        ecr = make_client(live)
        ecr.create_repository(repositoryName="faults")
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        auth = {"Authorization": f"Basic {token}"}
        workers = [requests.get(f"{live.api_url}/healthz", timeout=10).json()["pid"]]  # the one worker

        def push() -> int:
            body = os.urandom(64 * 1024 * 1024)
            started = requests.post(f"{live.registry_url}/v2/faults/blobs/uploads/", headers=auth, timeout=30)
            assert started.status_code == 202
            before = sum(map(_minor_faults, workers))
            done = requests.put(f"{live.registry_url}{started.headers['Location']}", timeout=120,
                                params={"digest": "sha256:" + hashlib.sha256(body).hexdigest()},
                                headers={**auth, "Content-Type": "application/octet-stream"}, data=body)
            assert done.status_code == 201, done.text
            return sum(map(_minor_faults, workers)) - before

        push()  # the first one grows the heap
        faults = [push() for _ in range(5)]
        assert max(faults) < 8000, faults  # glibc's defaults: about 27,000 in most of them
    finally:
        live.stop()


def test_a_worker_accepts_only_while_a_request_thread_is_free():
    """A worker whose request threads are all busy leaves new connections in the kernel's queue
    for another worker (stock gthread took them all, and one process could end up with every
    connection of a client while the other idled); a lingering thread gives way to them."""
    import queue
    import selectors
    import socket
    from concurrent.futures import Future
    from types import SimpleNamespace

    from ecr_emulator.server import KeepAliveThreadWorker

    worker = KeepAliveThreadWorker.__new__(KeepAliveThreadWorker)  # its state only, no process
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    worker.cfg = SimpleNamespace(threads=2)
    worker.sockets, worker.poller, worker._accepting = [listener], selectors.DefaultSelector(), False
    worker.tpool = SimpleNamespace(_work_queue=queue.SimpleQueue(), submit=lambda *args: Future())

    def accepting() -> bool:
        return any(key.fileobj is listener for key in worker.poller.get_map().values())

    with listener, socket.socket() as client:
        worker._busy = 0
        worker.set_accept_enabled(True)
        assert accepting()
        worker.enqueue_req(SimpleNamespace())
        assert accepting()  # a thread is still free
        worker.enqueue_req(SimpleNamespace())  # a kept-alive connection's request, say: the last thread
        assert not accepting()
        worker.set_accept_enabled(True)  # what gunicorn's loop asks whenever accepting is off
        assert not accepting()
        assert not worker._others_waiting()
        client.connect(listener.getsockname())
        deadline = time.monotonic() + 5
        while not worker._others_waiting() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker._others_waiting()  # a connection waits for a thread: a lingering one gives way
        worker._busy = 1
        worker.set_accept_enabled(True)
        assert accepting() and not worker._others_waiting()  # the poller takes it from here
