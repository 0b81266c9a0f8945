"""HTTPS on both listeners (--tls): a local CA per data directory, trusted by skopeo, podman, the
aws CLI and boto3 the documented ways, with no insecure flag anywhere."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
from cryptography import x509

from tests.images import login_password, push_with_skopeo
from tests.server import make_client, start_server
from tests.tools import need, run


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    live = start_server(tmp_path_factory.mktemp("tls") / "data", "--tls")
    yield live
    live.stop()


@pytest.fixture
def certs(tls_server, tmp_path) -> Path:
    """A --cert-dir for skopeo/podman: the CA as ca.crt, as in /etc/containers/certs.d/<host>/."""
    directory = tmp_path / "certs.d"
    directory.mkdir()
    shutil.copy(tls_server.ca_bundle, directory / "ca.crt")
    return directory


def test_both_listeners_speak_https_from_the_local_ca(tls_server):
    log = tls_server.log()
    ca = Path(tls_server.ca_bundle)
    assert f"API listening on https://127.0.0.1:{tls_server.api_port}" in log
    assert f"registry listening on https://127.0.0.1:{tls_server.registry_port}" in log
    assert str(ca) in log
    assert oct(ca.with_suffix(".key").stat().st_mode & 0o777) == "0o600"
    for url in (tls_server.api_url, tls_server.registry_url):
        with pytest.raises(requests.exceptions.SSLError):  # not trusted until told
            requests.get(f"{url}/v2/", timeout=10)
        with pytest.raises(requests.ConnectionError):  # and no plain HTTP on these ports
            requests.get(url.replace("https://", "http://") + "/v2/", timeout=10)
    assert requests.get(f"https://localhost:{tls_server.registry_port}/v2/", verify=str(ca), timeout=10).status_code == 401
    pem = ssl.get_server_certificate(("127.0.0.1", tls_server.registry_port))
    names = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_proxy_endpoint_says_https(tls_server):
    ecr = make_client(tls_server)
    data = ecr.get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == f"https://localhost:{tls_server.registry_port}"


def test_aws_cli_with_ca_bundle(tls_server):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="")
    env.pop("AWS_CA_BUNDLE", None)
    base = ["aws", "ecr", "--endpoint-url", tls_server.api_url, "--output", "json"]
    run(*base, "create-repository", "--repository-name", "cli/tls", "--ca-bundle", tls_server.ca_bundle, env=env)
    env["AWS_CA_BUNDLE"] = tls_server.ca_bundle
    repos = json.loads(run(*base, "describe-repositories", env=env))["repositories"]
    assert [r["repositoryName"] for r in repos] == ["cli/tls"]
    assert run(*base, "get-login-password", env=env).strip()
    env.pop("AWS_CA_BUNDLE")
    proc = subprocess.run([*base, "describe-repositories"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and "SSL" in proc.stderr  # it really was the bundle that made it work


def test_skopeo_logs_in_pushes_and_pulls_trusting_the_ca(tls_server, certs, tmp_path):
    need("skopeo")
    ecr = make_client(tls_server)
    ecr.create_repository(repositoryName="secure")
    host = f"localhost:{tls_server.registry_port}"
    image, auth = push_with_skopeo(ecr, f"{host}/secure:v1", tmp_path, cert_dir=certs)
    inspected = json.loads(run("skopeo", "inspect", "--cert-dir", str(certs), f"docker://{host}/secure:v1", env=auth))
    assert inspected["Digest"] == image.digest
    run("skopeo", "copy", "--src-cert-dir", str(certs), f"docker://{host}/secure:v1", f"oci:{tmp_path / 'back'}:v1",
        env=auth)
    # without the CA, skopeo refuses the certificate (and is never silently downgraded to HTTP)
    proc = subprocess.run(["skopeo", "inspect", f"docker://{host}/secure:v1"], capture_output=True, text=True,
                          env=dict(os.environ, **auth), timeout=120)
    assert proc.returncode != 0 and "certificate" in proc.stderr


def test_podman_pulls_and_pushes_trusting_the_ca(tls_server, certs, tmp_path):
    need("podman")
    if os.geteuid() != 0:
        pytest.skip("podman tests run as root with the vfs storage driver")
    ecr = make_client(tls_server)
    ecr.create_repository(repositoryName="pod/src")
    ecr.create_repository(repositoryName="pod/dst")
    host = f"localhost:{tls_server.registry_port}"
    root = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))
    base = ["podman", "--root", str(root / "root"), "--runroot", str(root / "run"), "--storage-driver", "vfs",
            "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    try:
        _, auth = push_with_skopeo(ecr, f"{host}/pod/src:v1", tmp_path, cert_dir=certs)
        run(*base, "login", "--cert-dir", str(certs), "-u", "AWS", "--password-stdin", host,
            input=login_password(ecr), env=auth)
        run(*base, "pull", "--cert-dir", str(certs), f"{host}/pod/src:v1", env=auth)
        run(*base, "tag", f"{host}/pod/src:v1", f"{host}/pod/dst:copied", env=auth)
        run(*base, "push", "--cert-dir", str(certs), f"{host}/pod/dst:copied", env=auth)
    finally:
        subprocess.run([*base, "system", "reset", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)
    tags = [d["imageTags"] for d in ecr.describe_images(repositoryName="pod/dst")["imageDetails"]]
    assert tags == [["copied"]]


def test_the_ca_is_made_once_and_the_certificate_follows_the_registry_host(tmp_path):
    data = tmp_path / "data"
    first = start_server(data, "--tls")
    ca = (data / "tls" / "ca.crt").read_bytes()
    first.stop()
    second = start_server(data, "--tls", "--registry-host", "ecr.internal.test:5443")
    try:
        assert (data / "tls" / "ca.crt").read_bytes() == ca
        cert = x509.load_pem_x509_certificate((data / "tls" / "server.crt").read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert {"localhost", "ecr.internal.test"} <= set(names.get_values_for_type(x509.DNSName))
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca))
        uri = make_client(second).create_repository(repositoryName="named")["repository"]["repositoryUri"]
        assert uri == "ecr.internal.test:5443/named"
    finally:
        second.stop()


def test_a_certificate_of_your_own(tmp_path):
    need("openssl")
    cert, key = tmp_path / "own.crt", tmp_path / "own.key"
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert))
    live = start_server(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key), trust=str(cert))
    try:
        assert not (tmp_path / "data" / "tls").exists()  # no local CA when a certificate is given
        assert make_client(live).create_repository(repositoryName="own")["repository"]["repositoryUri"]
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{live.registry_url}/v2/", timeout=10)
    finally:
        live.stop()


@pytest.mark.parametrize("args, says", [
    (["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"], "/nonexistent/cert.pem does not exist"),
    (["--tls-cert", "/nonexistent/cert.pem"], "--tls-cert and --tls-key go together"),
])
def test_tls_mistakes_are_one_line(tmp_path, args, says):
    proc = subprocess.run([sys.executable, "-m", "ecr_emulator", "serve", "--data-dir", str(tmp_path), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
