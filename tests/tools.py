"""External tools the tests drive (skopeo, podman, the aws CLI, compose...): run them, or skip
where one is missing (never in CI, where scripts/test installs them all)."""

from __future__ import annotations

import os
import shutil
import subprocess

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
