"""Setup mistakes end in one line naming the setting and the fix, exit status 2, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest


def run(*args: str, env: dict[str, str] | None = None, cwd=None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ECR_EMULATOR_")}
    return subprocess.run([sys.executable, "-m", "ecr_emulator", *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, cwd=cwd, timeout=60)


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args, needles", [
    (["serve", "--bogus"], ["unrecognized arguments: --bogus", "--help"]),
    (["serve", "--api-port", "abc"], ["--api-port", "invalid int value: 'abc'"]),
    (["serve", "--api-port", "70000"], ["--api-port 70000", "0 to 65535"]),
    (["serve", "--default-account", "12"], ["--default-account 12", "12-digit"]),
    (["serve", "--log-format", "xml"], ["--log-format xml", "text, json"]),
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
])
def test_bad_flags(args, needles):
    one_line_error(run(*args), *needles)


@pytest.mark.parametrize("variable, value, needles", [
    ("ECR_EMULATOR_API_PORT", "abc", ["ECR_EMULATOR_API_PORT='abc'", "expected an integer"]),
    ("ECR_EMULATOR_WORKERS", "0", ["ECR_EMULATOR_WORKERS='0'", "at least 1"]),
    ("ECR_EMULATOR_CONTROL_API", "maybe", ["ECR_EMULATOR_CONTROL_API='maybe'", "true or false"]),
    ("ECR_EMULATOR_ACCESS_KEYS", "AKIA=1", ["ECR_EMULATOR_ACCESS_KEYS='AKIA=1'", "KEY=12-digit-account"]),
    ("ECR_EMULATOR_VULNDB_URL", "ftp://x", ["ECR_EMULATOR_VULNDB_URL", "http://"]),
])
def test_bad_variables(variable, value, needles, tmp_path):
    one_line_error(run("serve", "--data-dir", str(tmp_path / "d"), env={variable: value}), *needles)


def test_a_flag_wins_over_a_bad_variable(tmp_path):
    proc = run("gc", "--data-dir", str(tmp_path / "d"), "--log-level", "info",
               env={"ECR_EMULATOR_LOG_LEVEL": "chatty"})
    assert proc.returncode == 0, proc.stderr


def test_unreachable_database_url(tmp_path):
    url = f"postgresql+psycopg://tester:s3cret@127.0.0.1:{free_port()}/ecr"
    line = one_line_error(run("serve", "--data-dir", str(tmp_path / "d"), "--database-url", url),
                          "--database-url / ECR_EMULATOR_DATABASE_URL", "cannot connect", "Connection refused")
    assert "s3cret" not in line  # the password is masked
    one_line_error(run("gc", "--data-dir", str(tmp_path / "d"), env={"ECR_EMULATOR_DATABASE_URL": "mysql://x/y"}),
                   "unsupported database", "postgresql+psycopg://")


def test_missing_data_dir_parent(tmp_path):
    target = tmp_path / "no" / "such" / "data"
    one_line_error(run("serve", "--data-dir", str(target)), "--data-dir / ECR_EMULATOR_DATA_DIR",
                   f"parent directory {target.parent} does not exist")
    assert not (tmp_path / "no").exists()  # nothing was created on the way
    (tmp_path / "file").write_text("x")
    one_line_error(run("gc", "--data-dir", str(tmp_path / "file")), "is not a directory")


def test_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(run("serve", "--data-dir", str(tmp_path / "d"), "--api-port", "0", "--registry-port",
                           str(port)), f"--registry-port / ECR_EMULATOR_REGISTRY_PORT {port}", "already in use")
        one_line_error(run("serve", "--data-dir", str(tmp_path / "d"), "--api-port", str(port)),
                       f"--api-port / ECR_EMULATOR_API_PORT {port}", "already in use")
    same = free_port()
    one_line_error(run("serve", "--data-dir", str(tmp_path / "d"), "--api-port", str(same), "--registry-port",
                       str(same)), "different ports")


def test_unknown_repository_for_lifecycle_run(tmp_path):
    data = str(tmp_path / "d")
    one_line_error(run("lifecycle", "run", "--repository", "nope", "--data-dir", data),
                   "--repository nope", "123456789012 (us-east-1)", "--account and --region")
    one_line_error(run("lifecycle", "run", "--repository", "nope", "--region", "eu-west-1", "--data-dir", data),
                   "(eu-west-1)")
