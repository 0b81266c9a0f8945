"""The keys and certificates managed signing signs with: fetched through the test-control API and the
CLI, kept across a reset, one key per profile however many background jobs race to make it; and a
signature pulled with oras-py."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from tests.conftest import make_client
from tests.images import build_image, login_password, push_via_api, registry_session
from tests.notary import verify
from tests.signing_world import (
    AUDIT,
    RELEASE,
    WEST,
    certificate,
    configure,
    envelope,
    profile,
    rule,
    signatures,
    statuses,
)


@pytest.fixture
def ecr(srv):  # type: ignore[no-untyped-def]
    return make_client(srv)


def test_signature_pulled_with_oras(srv, ecr, tmp_path):
    try:
        import oras.client
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("oras-py not installed")
    ecr.create_repository(repositoryName="app")
    configure(ecr, rule(RELEASE))
    image = build_image()
    push_via_api(ecr, "app", image, "v1")
    srv.run_jobs()
    (ref,) = signatures(ecr, "app", image.digest)
    client = oras.client.OrasClient(hostname=srv.registry, insecure=True, auth_backend="basic")
    client.login(username="AWS", password=login_password(ecr), hostname=srv.registry, tls_verify=False)
    target = f"{srv.registry}/app@{ref['digest']}"
    manifest = client.get_manifest(target)
    blob = client.get_blob(target, manifest["layers"][0]["digest"])
    assert blob.status_code == 200
    assert verify(blob.content, certificate(srv, RELEASE))["targetArtifact"]["digest"] == image.digest


def test_certificates_from_the_control_api_and_the_cli_agree_and_outlive_a_reset(srv, ecr):
    with pytest.raises(requests.HTTPError):
        srv.control("signing/certificates")  # no profile
    for params in ({"profile": "arn:aws:iam::123456789012:role/x"}, {"profile": RELEASE, "part": "key"}):
        r = requests.get(f"{srv.api_url}/_emulator/signing/certificates", params=params, timeout=30)
        assert r.status_code == 400 and "error" in r.json()
    chain = certificate(srv, RELEASE, "chain")  # before the profile ever signed: made now
    root, leaf = certificate(srv, RELEASE, "root"), certificate(srv, RELEASE, "leaf")
    assert chain == leaf + root and chain.count("BEGIN CERTIFICATE") == 2
    cli = subprocess.run([sys.executable, "-m", "ecr_emulator", "signing", "certificate", RELEASE, "--part", "root",
                          *srv.storage_args], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == root
    bad = subprocess.run([sys.executable, "-m", "ecr_emulator", "signing", "certificate", "nope", *srv.storage_args],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a signing profile ARN" in bad.stderr
    srv.reset()
    assert certificate(srv, RELEASE, "chain") == chain
    assert certificate(srv, AUDIT, "root") == root  # one root CA per registry
    assert certificate(srv, profile("release", region=WEST), "root") != root


def test_concurrent_pushes_signed_by_background_workers_share_one_key_per_profile(server):
    """The server's own job threads (two worker processes) sign pushes made at the same moment; the
    profiles are new, so their keys are made while several jobs race for them: one key each."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.server import eventually

    fresh = [profile(f"p_{os.urandom(4).hex()}"), profile(f"q_{os.urandom(4).hex()}")]
    ecr = make_client(server)
    ecr.create_repository(repositoryName="busy")
    configure(ecr, *(rule(arn) for arn in fresh))
    images = [build_image() for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: push_via_api(make_client(server), "busy", pair[1], f"v{pair[0]}"),
                      enumerate(images)))

    def all_done() -> bool:
        return all({s for _, s, _ in statuses(ecr, "busy", {"imageDigest": i.digest})} == {"COMPLETE"}
                   for i in images)

    eventually(all_done, timeout=120, interval=0.5)
    session = registry_session(ecr)
    leaves: dict[str, set[str]] = {arn: set() for arn in fresh}
    for image in images:
        for ref in signatures(ecr, "busy", image.digest):
            _, env = envelope(session, server, "busy", ref["digest"])
            result = verify(env, certificate(server, fresh[0]))
            assert result["targetArtifact"]["digest"] == image.digest
            name = result["chain"][0].subject.rfc4514_string().split(",")[0][3:]
            leaves[next(a for a in fresh if a.endswith(f"/{name}"))].add(result["chain"][0].serial_number)
    assert {arn: len(serials) for arn, serials in leaves.items()} == {arn: 1 for arn in fresh}
