"""Shared fixtures: one live server for the session, reset before every test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests import lifecycle_world, postgres, s3server
from tests.images import registry_session
from tests.server import LiveServer, make_client, start_server  # noqa: F401 - make_client for tests
from tests.tools import need, run

REGION = "us-east-1"
ACCOUNT = "123456789012"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("live") / "data")
    yield live
    live.stop()


@pytest.fixture(scope="session")
def s3() -> Iterator[s3server.S3Server]:
    """moto's S3 server on loopback, for the S3 blob store; each user makes its own bucket."""
    live = s3server.start()
    yield live
    live.stop()


@pytest.fixture(scope="session", autouse=True)
def _postgres_cluster() -> Iterator[None]:
    """With ECR_TEST_BACKEND=postgres every test server gets its own PostgreSQL database."""
    yield
    postgres.stop()


SERVER_TRACEBACKS: list[tuple[str, str]] = []  # (test, what the shared server logged) for the summary


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test on the shared server starts from a reset, with its own part of the server's log.

    A traceback the shared server logs while a test runs is a bug somewhere, though not always
    the test's (a background job of an earlier test may be the one that failed): it is reported
    at the end of the run under the test it happened during, rather than failing that test."""
    if "server" not in request.fixturenames:
        yield
        return
    live = request.getfixturevalue("server")
    live.reset()
    live.mark_log()
    yield
    logged = live.test_log()
    if "Traceback" in logged:
        start = logged.index("Traceback")
        SERVER_TRACEBACKS.append((request.node.nodeid, logged[max(0, start - 300):start + 3000]))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for nodeid, excerpt in SERVER_TRACEBACKS:
        terminalreporter.section(f"SERVER-TRACEBACK during {nodeid}", sep="-")
        terminalreporter.line(excerpt)


@pytest.fixture
def services(tmp_path):  # type: ignore[no-untyped-def]
    """The emulator's core in this process over a fresh data directory (and database), no HTTP."""
    from ecr_emulator.config import Settings
    from ecr_emulator.core.bootstrap import build_services

    data = tmp_path / "data"
    built = build_services(Settings(data_dir=str(data), database_url=postgres.database_url(str(data)) or "",
                                   vulndb_seed=""))
    yield built
    built.db.dispose()


@pytest.fixture
def ecr(server: LiveServer):
    return make_client(server)


@pytest.fixture
def repo(ecr) -> str:
    """A fresh repository named "app" (modules that want another name override this)."""
    ecr.create_repository(repositoryName="app")
    return "app"


@pytest.fixture
def aws(server: LiveServer):
    """Run the AWS CLI against the live server; returns the CompletedProcess."""

    def run(*args: str, region: str = REGION, input: str | None = None, check: bool = True):
        env = dict(
            os.environ,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION=region,
            AWS_PAGER="",
        )
        env.pop("AWS_PROFILE", None)
        cmd = ["aws", *args, "--endpoint-url", server.api_url, "--output", "json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, input=input, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def reg(ecr, server) -> requests.Session:
    """An authenticated session on the registry listener; URLs are relative to it."""
    s = registry_session(ecr)
    base = server.registry_url

    original = s.request

    def request(method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        if url.startswith("/"):
            url = base + url
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("allow_redirects", False)
        return original(method, url, *args, **kwargs)

    s.request = request  # type: ignore[method-assign]
    s.base = base  # type: ignore[attr-defined]
    return s


# ---- pull-through cache tests: upstream registries and a server of their own (tests/pullthrough_world.py)


@pytest.fixture(scope="module")
def ptc_world(tmp_path_factory):
    from tests import pullthrough_world

    world = pullthrough_world.start(tmp_path_factory.mktemp("ptc"))
    yield world
    world.stop()


# ---- lifecycle tests: a server of their own, background workers off (tests/lifecycle_world.py)


@pytest.fixture(scope="module")
def lserver(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("lifecycle") / "data", "--job-workers", "0")
    yield live
    live.stop()


@pytest.fixture
def srv(lserver):  # type: ignore[no-untyped-def]
    """That server, reset: background jobs run only when a test asks (POST /_emulator/jobs/run)."""
    lserver.reset()
    return lserver


@pytest.fixture
def w(lserver) -> lifecycle_world.World:
    lserver.reset()
    world = lifecycle_world.World(lserver)
    world.ecr.create_repository(repositoryName=lifecycle_world.REPO)
    return world


# ---- real registry clients, logged in with `aws ecr get-login-password` as users do


@pytest.fixture
def login_password(aws) -> str:
    return aws("ecr", "get-login-password").stdout.strip()


@pytest.fixture
def skopeo(server, login_password, tmp_path):
    need("skopeo")
    authfile = tmp_path / "auth.json"
    run("skopeo", "login", "--tls-verify=false", "--authfile", str(authfile), "-u", "AWS", "--password-stdin",
        server.registry, input=login_password)

    def skopeo_(*args: str, fail: bool = False) -> str:
        """stdout of a skopeo command that must succeed, or stderr of one that must fail."""
        if not fail:
            return run("skopeo", *args, env={"REGISTRY_AUTH_FILE": str(authfile)})
        proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, REGISTRY_AUTH_FILE=str(authfile)))
        assert proc.returncode != 0, proc.stdout
        return proc.stderr

    return skopeo_
