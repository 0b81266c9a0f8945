"""The container image and the compose example, without a container engine.

The Dockerfile is read with ``dockerfile-parse``, and what it would do is done here: its build
RUN step (``container/install.sh``) builds the image's ``/opt/ecr-emulator`` into a temporary
directory (a non-editable install, so package data and migrations must really ship); then its
ENV, USER, ENTRYPOINT + CMD and HEALTHCHECK run from there, as that user, with the compose
example's environment for the ``ecr`` service. Only the address and ports differ: tests listen
on loopback and free ports. The compose file is validated by Debian's ``docker-compose``
(``config`` needs no engine) and its settings are checked against the running server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from tests.images import push_with_skopeo
from tests.server import LiveServer, make_client
from tests.tools import need, run

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "examples" / "compose" / "compose.yaml"
APP_DIR = "/opt/ecr-emulator"  # where the Dockerfile puts the application


def instructions(stage: int | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, value) of the Dockerfile, of one stage (0-based) or all."""
    found, current = [], -1
    for item in DockerfileParser(str(ROOT / "Dockerfile")).structure:
        if item["instruction"] == "FROM":
            current += 1
        if stage is None or current == stage:
            found.append((item["instruction"], item["value"]))
    return found


def one(stage: int, instruction: str) -> str:
    values = [v for i, v in instructions(stage) if i == instruction]
    assert len(values) == 1, f"expected one {instruction} in stage {stage}: {values}"
    return values[0]


def compose_config(path: Path = COMPOSE) -> dict:
    need("docker-compose")
    return yaml.safe_load(run("docker-compose", "-f", str(path), "config"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def image_root():
    """The image's /opt/ecr-emulator, built by the Dockerfile's own build step."""
    root = Path(tempfile.mkdtemp(prefix="ecr-image-"))
    root.chmod(0o755)  # the image's user must reach it, as in the image
    prefix = root / "opt" / "ecr-emulator"
    argv = json.loads(one(0, "RUN"))
    assert argv[0] == "/src/container/install.sh" and argv[1:] == ["/src", APP_DIR], argv
    copied = one(1, "COPY").split()
    assert copied == ["--from=build", APP_DIR, APP_DIR], copied
    subprocess.run([str(ROOT / "container" / "install.sh"), str(ROOT), str(prefix)], check=True, timeout=900,
                   env=dict(os.environ, PIP_NO_CACHE_DIR="0"))
    yield prefix
    shutil.rmtree(root, ignore_errors=True)


def image_env(prefix: Path) -> dict[str, str]:
    """The final stage's ENV, with the application directory where the test built it."""
    envs = DockerfileParser(str(ROOT / "Dockerfile")).envs
    env = {k: v.replace(APP_DIR, str(prefix)) for k, v in envs.items()}
    env["PATH"] = f"{prefix}/bin:{os.environ['PATH']}"
    return env


def test_dockerfile_is_small_non_root_and_self_checking():
    final = dict(instructions(1))
    assert final["FROM"] == "${PYTHON}"
    assert re.fullmatch(r"PYTHON=python:3\.\d+-slim(-\w+)?", dict(instructions())["ARG"])
    assert final["USER"].split(":")[0] not in ("0", "root")
    assert json.loads(final["VOLUME"]) == ["/data"]
    assert set(final["EXPOSE"].split()) == {"5000", "5001"}
    envs = DockerfileParser(str(ROOT / "Dockerfile")).envs
    assert envs["ECR_EMULATOR_HOST"] == "0.0.0.0" and envs["ECR_EMULATOR_DATA_DIR"] == "/data"
    assert "CMD" in final["HEALTHCHECK"]
    assert (ROOT / ".dockerignore").read_text().split().count(".venv") == 1


def test_image_serves_as_its_user_with_the_compose_settings(image_root, tmp_path):
    need("skopeo")
    compose = compose_config()["services"]["ecr"]
    env = dict(os.environ, **image_env(image_root), **compose["environment"])
    data = Path(tempfile.mkdtemp(prefix="ecr-volume-"))
    api_port, registry_port, other_port = free_port(), free_port(), free_port()
    env.update(
        ECR_EMULATOR_HOST="127.0.0.1",  # the image says 0.0.0.0; tests listen on loopback only
        ECR_EMULATOR_DATA_DIR=str(data),
        ECR_EMULATOR_API_PORT=str(api_port),
        ECR_EMULATOR_REGISTRY_PORT=str(registry_port),
        ECR_EMULATOR_REGISTRY_PORT_MAP=compose["environment"]["ECR_EMULATOR_REGISTRY_PORT_MAP"].replace(
            "=5002", f"={other_port}"),
    )
    user = one(1, "USER").split(":")
    as_user: list[str] = []
    if os.geteuid() == 0:  # run as the image's user, who owns the volume and nothing else
        os.chown(data, int(user[0]), int(user[1]))
        as_user = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", "--clear-groups", "--"]
    command = json.loads(one(1, "ENTRYPOINT")) + json.loads(one(1, "CMD"))
    health = json.loads(one(1, "HEALTHCHECK").split("CMD", 1)[1])
    log_path = tmp_path / "image.log"
    with open(log_path, "wb") as log:
        started = time.monotonic()
        process = subprocess.Popen([*as_user, *command], env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=data)
    try:
        while subprocess.run([*as_user, *health], env=env, capture_output=True).returncode != 0:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() - started < 60, log_path.read_text()
            time.sleep(0.2)
        live = LiveServer(process, api_port, registry_port, data, log_path)
        text = log_path.read_text()
        assert "8 imported" in text  # the shipped advisories are in the installed package
        assert f"registry 210987654321/eu-west-1 listening on http://127.0.0.1:{other_port}" in text
        ecr = make_client(live)
        repo = ecr.create_repository(repositoryName="demo/alpine")["repository"]
        host = compose["environment"]["ECR_EMULATOR_REGISTRY_HOST"]
        assert repo["repositoryUri"] == f"{host}/demo/alpine"  # what the other containers push to
        token = ecr.get_authorization_token()["authorizationData"][0]
        assert token["proxyEndpoint"] == f"http://{host}"
        # localhost:<port> is the compose network's ecr:5000
        image, _ = push_with_skopeo(ecr, f"localhost:{registry_port}/demo/alpine:v1", tmp_path)
        assert ecr.describe_images(repositoryName="demo/alpine")["imageDetails"][0]["imageDigest"] == image.digest
        owners = {p.stat().st_uid for p in data.rglob("*")}
        assert owners == {os.geteuid() if not as_user else int(user[0])}
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0, log_path.read_text()
    assert subprocess.run([*as_user, *health], env=env, capture_output=True).returncode == 1
    shutil.rmtree(data, ignore_errors=True)


def test_compose_example_is_valid_and_wired_by_service_name():
    config = compose_config()
    services = config["services"]
    ecr = services["ecr"]
    assert Path(ecr["build"]["context"]).resolve() == ROOT  # the Dockerfile above
    registry_host = ecr["environment"]["ECR_EMULATOR_REGISTRY_HOST"]
    name, port = registry_host.split(":")
    assert name == "ecr" and port == "5000"  # the service name, and the registry port inside the image
    assert services["setup"]["depends_on"]["ecr"]["condition"] == "service_healthy"
    assert services["setup"]["environment"]["AWS_ENDPOINT_URL_ECR"] == "http://ecr:5001"
    assert services["app"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    script = services["app"]["command"][0]
    assert "skopeo copy" in script and "/shared/uri" in script  # pushes where repositoryUri says
    assert "/shared" in " ".join(services["setup"]["volumes"]) and "get-login-password" in \
        services["setup"]["command"][0]


def test_compose_tooling_rejects_a_broken_file(tmp_path):
    """The validation above is real: the same tooling refuses a mistake in the same file."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("condition: service_healthy", "condition: service_happy"))
    need("docker-compose")
    proc = subprocess.run(["docker-compose", "-f", str(broken), "config"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "service_happy" in proc.stderr


def test_readme_documents_building_and_publishing_the_image():
    readme = (ROOT / "README.md").read_text()
    for line in ("docker build -t ecr-emulator .", "docker push", "examples/compose/compose.yaml"):
        assert line in readme, line
