"""The hostile-input tier: requests no client would send, on both planes, with and without
credentials. Generated from the model (every operation, every string and number member) and
from the registry's route table (every route, every method, odd methods), plus the byte-level
cases only a raw socket can send. Every answer must be a 4xx in the plane's error shape (501
for operations not built yet), never a 500, and nothing may be half-written.
"""

from __future__ import annotations

import base64
import json
import socket

import pytest
import requests

from ecr_emulator.api.protocol import service_model
from ecr_emulator.registry.app import ROUTES
from tests.images import basic_auth, build_image, push_via_api, push_via_registry, sha
from tests.test_robustness import AUTH, PREFIX, plausible

REPO = "hostile/app"
NO_AUTH = None
SURROGATE = "\ud800"


def api_call(server, op: str, raw: bytes, auth: str | None = AUTH, **headers: str) -> requests.Response:
    hdrs = {"X-Amz-Target": PREFIX + op, "Content-Type": "application/x-amz-json-1.1", **headers}
    if auth is not None:
        hdrs["Authorization"] = auth
    return requests.post(server.api_url + "/", data=raw, headers=hdrs, timeout=120)


def assert_aws_shaped(r: requests.Response, what) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code < 500 or r.status_code == 501, (what, r.status_code, r.text[:300])
    if r.status_code != 200:
        assert "__type" in r.json(), (what, r.text[:300])


def assert_oci_shaped(r: requests.Response, what) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code < 500, (what, r.status_code, r.text[:300])
    if r.status_code >= 400 and r.status_code != 401 and r.request.method != "HEAD":
        assert "errors" in r.json(), (what, r.text[:300])


def raw_http(port: int, request: bytes, timeout: float = 30) -> tuple[int, bytes]:
    """Send bytes as they are (requests would refuse or fix them), then end the request stream;
    returns (status, response)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


def _string_paths(shape, prefix=()):  # type: ignore[no-untyped-def]
    """Paths to every string member reachable in a plausible body (lists: their first item)."""
    if shape.type_name == "structure":
        for name, member in shape.members.items():
            yield from _string_paths(member, (*prefix, name))
    elif shape.type_name == "list":
        yield from _string_paths(shape.member, (*prefix, 0))
    elif shape.type_name == "map":
        yield (*prefix, "<key>")
    elif shape.type_name in ("string", "blob"):
        yield prefix


def _set(body, path, value):  # type: ignore[no-untyped-def]
    node = body
    for step in path[:-1]:
        node = node[step]
    last = path[-1]
    if last == "<key>":
        node[value] = next(iter(node.values()))
        return body
    node[last] = value
    return body


def test_every_operation_refuses_hostile_bodies_with_and_without_credentials(server, ecr):
    ecr.create_repository(repositoryName=REPO)
    push_via_api(ecr, REPO, build_image(), "v1")
    model = service_model()
    nested = b"[" * 200_000 + b"]" * 200_000
    for op in model.operation_names:
        shape = model.operation_model(op).input_shape
        bodies: list[bytes] = [nested, b"[1,2,3]", b'"text"', b"12", b"\xff\xfe", b'{"a": 1e999999}',
                               b'{"a": ' + b"9" * 5000 + b"}"]
        if shape is not None:
            for path in _string_paths(shape):
                body = _set(json.loads(json.dumps(plausible(shape))), path, SURROGATE)
                bodies.append(json.dumps(body).encode())
            for name, member in shape.members.items():
                if member.type_name in ("integer", "long", "double", "float", "timestamp"):
                    for value in (10**400, 2**63, -(2**63) - 1):
                        bodies.append(json.dumps({**plausible(shape), name: value}).encode())
        for auth in (AUTH, NO_AUTH):
            for raw in bodies:
                assert_aws_shaped(api_call(server, op, raw, auth), (op, raw[:80], auth is not None))
    assert "Traceback" not in server.test_log(), server.test_log()[-4000:]


@pytest.mark.parametrize("auth", [
    "AWS4-HMAC-SHA256 Credential=tésting/20261122/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=0",
    "AWS4-HMAC-SHA256 Credential=testing/20261122/" + "a" * 40 + "/ecr/aws4_request, Signature=0",
    "AWS4-HMAC-SHA256 Credential=testing/20261122/US-EAST-1/ecr/aws4_request, Signature=0",
    "AWS4-HMAC-SHA256 Credential=testing/20261122/../ecr/aws4_request, Signature=0",
    "AWS4-HMAC-SHA256 " + "x" * 7000,
    "Basic " + base64.b64encode("AWS:pässwörd".encode()).decode(),
])
def test_garbled_credentials_get_aws_errors(server, auth):
    r = requests.post(server.api_url + "/", data=b"{}", timeout=30,
                      headers={"X-Amz-Target": PREFIX + "DescribeRepositories", "Authorization": auth.encode()})
    assert r.status_code in (400, 403), r.text
    assert r.json()["__type"] in ("MissingAuthenticationTokenException", "InvalidSignatureException",
                                  "UnrecognizedClientException", "IncompleteSignatureException")


def test_impossible_region_is_refused_on_every_backend(server):
    auth = AUTH.replace("us-east-1", "r" * 40)
    r = api_call(server, "CreateRepository", json.dumps({"repositoryName": "x1"}).encode(), auth)
    assert (r.status_code, r.json()["__type"]) == (403, "InvalidSignatureException")
    assert "Credential should be scoped to a valid region" in r.json()["message"]


def test_api_refuses_oversized_chunked_body_instead_of_running_it(server, ecr):
    ecr.create_repository(repositoryName="kept")

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * (1024 * 1024)
        yield json.dumps({"repositoryName": "kept", "force": True}).encode()

    r = requests.post(server.api_url + "/", data=chunks(), timeout=120,
                      headers={"X-Amz-Target": PREFIX + "DeleteRepository", "Authorization": AUTH})
    assert r.status_code == 413, r.text
    assert ecr.describe_repositories()["repositories"][0]["repositoryName"] == "kept"


def test_api_refuses_bodies_of_millions_of_values(server):
    body = b'{"repositoryNames": [' + b",".join([b"1"] * 2_000_000) + b"]}"
    r = api_call(server, "DescribeRepositories", body)
    assert (r.status_code, r.json()["__type"]) == (400, "SerializationException")


@pytest.mark.parametrize("method", ["PROPFIND", "get", "BREW", "TRACE"])
def test_odd_methods_on_both_listeners(server, method):
    for port, path in ((server.api_port, "/"), (server.registry_port, "/v2/"), (server.registry_port, "/v2/a/b/tags/list")):
        status, data = raw_http(port, f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n".encode())
        assert 400 <= status < 500, (method, port, path, data[:300])


@pytest.mark.parametrize("path", [b"/v2/a\rb/tags/list", b"/v2/a%0d%0ab/tags/list", b"/v2/%0aX-Injected:%201/_catalog"])
def test_control_characters_in_paths(server, ecr, path):
    auth = basic_auth(ecr).encode()
    status, data = raw_http(server.registry_port, b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\nAuthorization: "
                            + auth + b"\r\n\r\n")
    assert 400 <= status < 500, data[:300]
    assert not [line for line in server.log().splitlines() if line.startswith("X-Injected")]


def test_long_host_labels_and_odd_hosts(server, ecr):
    auth = basic_auth(ecr).encode()
    for host in (b"a" * 64 + b".example", b"123456789012.dkr.ecr." + b"r" * 70 + b".localhost", b"\xff\xfe",
                 b"[::1", b"x" * 4000):
        status, data = raw_http(server.registry_port, b"GET /v2/ HTTP/1.1\r\nHost: " + host
                                + b"\r\nAuthorization: " + auth + b"\r\n\r\n")
        assert 200 <= status < 500, (host[:80], data[:300])


def test_every_route_and_method_with_and_without_credentials(server, ecr, reg):
    ecr.create_repository(repositoryName=REPO)
    image = build_image()
    push_via_registry(reg, reg.base, REPO, image, "v1")
    values = {"name": REPO, "reference": "v1", "digest": image.digest, "upload_id": "nope"}
    bad_auth = {"Authorization": "Basic " + base64.b64encode("AWS:pässwörd".encode()).decode()}
    for route in ROUTES:
        path = route.pattern.pattern.strip("^$").replace("/?", "/")
        for key, value in values.items():
            path = path.replace(f"(?P<{key}>[^?#]+?)", value).replace(f"(?P<{key}>[^/]+)", value)
        for method in (*route.methods, "OPTIONS", "PROPFIND"):
            for headers in ({}, bad_auth, {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"}):
                r = requests.request(method, server.registry_url + path, headers=headers, timeout=30, data=b"{")
                assert r.status_code in (401, 403, 404, 405), (method, path, headers, r.status_code, r.text[:200])
            r = reg.request(method, path, data=b"[" * 100_000 + b"]" * 100_000,
                            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
            assert_oci_shaped(r, (method, path))
    assert "Traceback" not in server.test_log(), server.test_log()[-4000:]


def test_non_ascii_download_signature(server, ecr, reg):
    ecr.create_repository(repositoryName=REPO)
    image = build_image()
    push_via_registry(reg, reg.base, REPO, image, "v1")
    url = ecr.get_download_url_for_layer(repositoryName=REPO, layerDigest=image.blobs[1].digest)["downloadUrl"]
    port_url = url.replace(url.split("/v2/")[0], server.registry_url)
    broken = port_url.split("X-Emulator-Signature=")[0] + "X-Emulator-Signature=%C3%A9t%C3%A9"
    r = requests.get(broken, timeout=30)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "DENIED"
    for expires in ("%C2%B2", "99999999999999999999999999", "-1"):
        r = requests.get(port_url.replace("X-Emulator-Expires=", f"X-Emulator-Expires={expires}&x="), timeout=30)
        assert r.status_code == 403, r.text


@pytest.mark.parametrize("query", ["n=%C2%B2", "n=%D9%A3", "n=1e3", "n=" + "9" * 30, "n=-0", "last=%00"])
def test_listing_parameters(server, ecr, reg, query):
    ecr.create_repository(repositoryName=REPO)
    for path in (f"/v2/{REPO}/tags/list?{query}", f"/v2/_catalog?{query}"):
        r = reg.get(path)
        assert_oci_shaped(r, path)


def _manifest(size: int | str) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(b"{}"), "size": size},
        "layers": [],
    }).encode()


@pytest.mark.parametrize("raw", [
    _manifest(2**63), _manifest(2**64 + 5), _manifest(10**400), _manifest(SURROGATE),
    json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "annotations": {SURROGATE: "x"}}).encode(),
    b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "x": '
    + b"[" * 100_000 + b"]" * 100_000 + b"}",
    b'{"schemaVersion": 2, "subject": {"digest": "sha256:\\ud800", "size": 1}}',
])
def test_hostile_manifests_on_both_planes(server, ecr, reg, raw):
    ecr.create_repository(repositoryName=REPO)
    r = reg.put(f"/v2/{REPO}/manifests/v1", data=raw,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert_oci_shaped(r, raw[:100])
    assert r.status_code == 400
    body = json.dumps({"repositoryName": REPO, "imageTag": "v1", "imageManifest": raw.decode("utf-8", "replace")})
    r = api_call(server, "PutImage", body.encode())
    assert_aws_shaped(r, raw[:100])
    assert r.status_code == 400
    assert ecr.describe_images(repositoryName=REPO)["imageDetails"] == []


def test_malformed_chunked_patch(server, ecr, reg):
    ecr.create_repository(repositoryName=REPO)
    r = reg.post(f"/v2/{REPO}/blobs/uploads/")
    location = r.headers["Location"]
    auth = basic_auth(ecr).encode()
    for body in (b"zz\r\nabc\r\n0\r\n\r\n", b"5\r\nab", b"-1\r\nx\r\n0\r\n\r\n", b"ffffffffffffffffffff\r\nx\r\n"):
        status, data = raw_http(server.registry_port, b"PATCH " + location.encode() + b" HTTP/1.1\r\nHost: localhost"
                                b"\r\nAuthorization: " + auth + b"\r\nTransfer-Encoding: chunked\r\n"
                                b"Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n" + body, timeout=10)
        assert status == 0 or 400 <= status < 500, data[:300]
    assert reg.get(location).status_code == 204  # the upload is still there, and still usable
    assert "Traceback" not in server.test_log(), server.test_log()[-4000:]


@pytest.mark.parametrize("body", [b"[]", b'"x"', b'{"set": 1e400}', b'{"advance": ' + b"9" * 400 + b"}",
                                  b'{"set": NaN}', b'{"advance": Infinity}', b'{"set": "nan"}', b'{"advance": "inf"}',
                                  b'{"set": "-inf"}', b'{"set": true}', b'{"set": 1e300}', b"{"])
def test_control_clock_refuses_non_finite_and_malformed(server, body):
    before = server.control("clock")["offset"]
    r = requests.post(f"{server.api_url}/_emulator/clock", data=body, timeout=30,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert abs(server.control("clock")["offset"] - before) < 5


@pytest.mark.parametrize("path", ["reset", "jobs/run", "lifecycle/run", "clock"])
def test_control_refuses_cross_site_simple_posts(server, ecr, path):
    ecr.create_repository(repositoryName="survivor")
    for headers, body in (({}, b""), ({"Content-Type": "text/plain"}, b"{}"),
                          ({"Content-Type": "application/x-www-form-urlencoded"}, b"a=b"),
                          ({"Content-Type": "application/json", "Origin": "https://evil.example"}, b"{}")):
        r = requests.post(f"{server.api_url}/_emulator/{path}", data=body, headers=headers, timeout=30)
        assert r.status_code in (403, 415), (path, headers, r.status_code, r.text)
    assert ecr.describe_repositories()["repositories"][0]["repositoryName"] == "survivor"
    r = requests.post(f"{server.api_url}/_emulator/lifecycle/run", data=b"[1]", timeout=30,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400
