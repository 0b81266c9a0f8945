"""The world pull-through-cache tests run in: three real upstream registries (CNCF Distribution on
loopback) and an emulator that reaches them through ``--upstream-endpoint``:

- ``quay.io`` -> an open Distribution (no credentials needed, like quay.io);
- ``registry-1.docker.io`` -> a Distribution behind htpasswd Basic auth (Docker Hub needs a secret);
- ``registry.k8s.io`` -> an open Distribution that tests stop and start (an upstream that goes down).

``--secrets-file`` holds the Docker Hub credentials (tests rewrite it), ``--iam-config`` two users
that may pull but lack ``ecr:CreateRepository`` or ``ecr:BatchImportUpstreamImage``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import requests

from tests import upstream as upstreams
from tests.images import basic_auth
from tests.server import LiveServer, make_client, start_server

ACCOUNT, REGION = "123456789012", "us-east-1"
HUB_USER, HUB_PASSWORD = "hubuser", "hub-token-1"
HUB_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
OTHER_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ecr-pullthroughcache/other-GhIjKl"
NO_CREATE_KEY, NO_IMPORT_KEY = "AKIANOCREATE00000001", "AKIANOIMPORT00000001"
OCI_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


def _user(key: str, name: str, actions: list[str]) -> dict:
    return {"accessKeyId": key, "secretAccessKey": "testing", "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "policies": [{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": actions, "Resource": "*"}]}]}


PULL = ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability"]


@dataclass
class World:
    server: LiveServer
    open: upstreams.Upstream  # quay.io
    hub: upstreams.Upstream  # registry-1.docker.io, htpasswd
    flaky: upstreams.Upstream  # registry.k8s.io, stopped and started by tests
    secrets_path: Path
    workdir: Path

    def client(self, access_key: str = "testing"):  # type: ignore[no-untyped-def]
        return make_client(self.server, access_key=access_key)

    def write_secrets(self, secrets: dict) -> None:
        self.secrets_path.write_text(json.dumps(secrets))

    def reset(self) -> None:
        self.server.reset()
        self.write_secrets({HUB_SECRET: {"username": HUB_USER, "accessToken": HUB_PASSWORD}})
        if self.flaky.process.poll() is not None:
            self.flaky.restart()

    def session(self, access_key: str = "testing") -> requests.Session:
        """A registry session with a fresh token (tokens last 12 h on the emulator clock)."""
        s = requests.Session()
        s.headers["Authorization"] = basic_auth(self.client(access_key))
        return s

    def get(self, path: str, access_key: str = "testing", **kwargs) -> requests.Response:  # type: ignore[no-untyped-def]
        headers = {"Accept": OCI_ACCEPT, **kwargs.pop("headers", {})}
        return self.session(access_key).get(self.server.registry_url + path, headers=headers, timeout=120,
                                            **kwargs)

    def stop(self) -> None:
        self.server.stop()
        for u in (self.open, self.hub, self.flaky):
            u.stop()


def start(workdir: Path) -> World:
    started: list = []
    try:
        open_ = upstreams.start(workdir / "quay")
        started.append(open_)
        hub = upstreams.start(workdir / "hub", HUB_USER, HUB_PASSWORD)
        started.append(hub)
        flaky = upstreams.start(workdir / "k8s")
        started.append(flaky)
        secrets_path = workdir / "secrets.json"
        secrets_path.write_text(json.dumps({HUB_SECRET: {"username": HUB_USER, "accessToken": HUB_PASSWORD}}))
        iam = workdir / "iam.json"
        iam.write_text(json.dumps({"principals": [
            _user(NO_CREATE_KEY, "no-create", PULL + ["ecr:BatchImportUpstreamImage"]),
            _user(NO_IMPORT_KEY, "no-import", PULL + ["ecr:CreateRepository"]),
        ]}))
        server = start_server(
            workdir / "data",
            "--upstream-endpoint", f"quay.io={open_.url}",
            "--upstream-endpoint", f"registry-1.docker.io={hub.url}",
            "--upstream-endpoint", f"registry.k8s.io={flaky.url}",
            "--secrets-file", str(secrets_path), "--iam-config", str(iam), "--upstream-timeout", "5",
        )
    except Exception:
        for u in started:
            u.stop()
        raise
    return World(server, open_, hub, flaky, secrets_path, workdir)


def concurrently(n: int, fn) -> list:  # type: ignore[no-untyped-def]
    """``fn(i)`` in ``n`` threads released together; their results (an exception is re-raised)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(30)
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    if errors:
        raise errors[0]
    return results
