"""External tools the tests drive (skopeo, podman, the aws CLI, compose...): run them, or skip
where one is missing (never in CI, where scripts/test installs them all)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def run(*cmd: str, input: str | None = None, env: dict | None = None, timeout: int = 300) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            raise AssertionError(f"{tool} is required in CI (scripts/test installs it)")
        pytest.skip(f"{tool} not installed")


@contextmanager
def podman_logged_in(registry: str, password: str, workdir: Path) -> Iterator[Callable[..., str]]:
    """podman (as root, vfs storage, its own root and runroot) logged in to ``registry`` as AWS;
    yields a function running podman commands. Its storage is removed afterwards."""
    need("podman")
    if os.geteuid() != 0:
        pytest.skip("podman tests run as root with the vfs storage driver")
    root = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))  # podman wants a short runroot path
    base = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    authfile = workdir / "podman-auth.json"
    run(*base, "login", "--tls-verify=false", "--authfile", str(authfile), "-u", "AWS", "--password-stdin",
        registry, input=password)

    def podman_(*args: str) -> str:
        return run(*base, *args, env={"REGISTRY_AUTH_FILE": str(authfile)})

    try:
        yield podman_
    finally:
        subprocess.run([*base, "system", "reset", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
