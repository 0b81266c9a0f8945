"""pytest fixtures for testing code that uses Amazon ECR (installed as a ``pytest11`` plugin).

One emulator per test session, in the test process (``ecr_emulator.testing``), on free
loopback ports with its data in a temporary directory; every test that uses one of the
function-scoped fixtures starts from an empty emulator and a clock at real time.

- ``ecr_server``: the emulator, reset for this test (``api_url``, ``registry``, ``client()``,
  ``login()``, ``clock``, ``run_jobs()``).
- ``ecr_client``: a boto3 ECR client for the default account and region.
- ``ecr_registry``: a registry login (``registry``, ``username``, ``password``) whose
  ``auth_file`` skopeo (``--authfile``), podman, oras and docker read.
- ``ecr_clock``: the emulator clock (``now()``, ``set(epoch)``, ``advance(seconds)``).
- ``ecr_env``: the environment set so that unmodified code (``boto3.client("ecr")``, the aws
  CLI) talks to the emulator with test credentials.
- ``ecr_emulator_settings``: session-scoped dict of settings for the server; override it in
  a ``conftest.py`` (e.g. ``{"default_account": "210987654321", "tls": True}``).

Nothing is imported from ecr-emulator until a test asks for one of these, so merely having
the package installed costs a pytest run nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ecr_emulator_settings() -> dict[str, Any]:
    """Settings for the session's emulator (``config.Settings`` names); override in conftest.py."""
    return {}


@pytest.fixture(scope="session")
def ecr_emulator(ecr_emulator_settings: dict[str, Any]) -> Iterator[Any]:
    """The session's emulator, as it is (not reset); most tests want ``ecr_server``."""
    from ecr_emulator import testing

    with testing.server(**ecr_emulator_settings) as emulator:
        yield emulator


@pytest.fixture
def ecr_server(ecr_emulator: Any) -> Any:
    """The emulator, emptied and its clock at real time for this test."""
    ecr_emulator.reset()
    return ecr_emulator


@pytest.fixture
def ecr_client(ecr_server: Any) -> Any:
    """A boto3 ECR client for the default account and region."""
    return ecr_server.client()


@pytest.fixture
def ecr_registry(ecr_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A registry login (registry, username, password) and an auth file registry clients read."""
    from dataclasses import replace

    login = ecr_server.login()
    path = login.write_auth_file(tmp_path_factory.mktemp("ecr-registry") / "auth.json")
    return replace(login, auth_file=str(path))


@pytest.fixture
def ecr_clock(ecr_server: Any) -> Any:
    """The emulator clock: now(), set(epoch), advance(seconds), reset()."""
    return ecr_server.clock


@pytest.fixture
def ecr_env(ecr_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """AWS_* variables set for this test so that unmodified SDK code and the aws CLI use the emulator."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    env = ecr_server.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
