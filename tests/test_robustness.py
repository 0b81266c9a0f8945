"""Never a 500: every operation of the model, fed model-shaped and broken inputs, answers with an
AWS-shaped error or a result; the registry answers every odd request with an OCI error.

Inputs are generated from botocore's shapes: a plausible value for each member, then for
each member in turn the wrong type, null, the empty value and an over-long value.
"""

from __future__ import annotations

import json
import random

import requests

from ecr_emulator.api.protocol import service_model
from tests.images import build_image, push_via_api

PREFIX = "AmazonEC2ContainerRegistry_V20150921."
AUTH = ("AWS4-HMAC-SHA256 Credential=testing/20261122/us-east-1/ecr/aws4_request, "
        "SignedHeaders=host, Signature=" + "0" * 64)
PLAUSIBLE = {
    "RepositoryName": "fuzz/app",
    "RegistryId": "123456789012",
    "ImageTag": "v1",
    "ImageDigest": "sha256:" + "a" * 64,
    "LayerDigest": "sha256:" + "b" * 64,
    "UploadId": "00000000-0000-4000-8000-000000000000",
    "Arn": "arn:aws:ecr:us-east-1:123456789012:repository/fuzz/app",
}


def plausible(shape, depth: int = 0):
    kind = shape.type_name
    if shape.name in PLAUSIBLE:
        return PLAUSIBLE[shape.name]
    if kind == "structure":
        if depth > 4:
            return {}
        return {name: plausible(member, depth + 1) for name, member in shape.members.items()}
    if kind == "list":
        return [plausible(shape.member, depth + 1)]
    if kind == "map":
        return {"k": plausible(shape.value, depth + 1)}
    if kind == "string":
        if shape.enum:
            return shape.enum[0]
        return "x" * max(shape.metadata.get("min", 1), 1)
    if kind in ("integer", "long"):
        return max(shape.metadata.get("min", 1), 1)
    if kind == "boolean":
        return True
    if kind == "blob":
        return "eA=="
    if kind in ("timestamp", "double", "float"):
        return 1700000000
    return None


def broken_variants(shape):
    base = plausible(shape)
    yield base
    yield {}
    for name, member in shape.members.items():
        for bad in (None, 7, "text", [], {}, True, "x" * 70000, -1, 10**12):
            yield {**base, name: bad}
        if member.type_name == "structure":
            yield {**base, name: {"unknown": 1}}


def call(server, op: str, body) -> requests.Response:
    return requests.post(
        server.api_url + "/",
        data=json.dumps(body),
        headers={"X-Amz-Target": PREFIX + op, "Authorization": AUTH,
                 "Content-Type": "application/x-amz-json-1.1"},
        timeout=60,
    )


def test_every_operation_answers_broken_input_without_a_500(server, ecr):
    ecr.create_repository(repositoryName="fuzz/app")
    push_via_api(ecr, "fuzz/app", build_image(), "v1")
    model = service_model()
    problems = []
    for op in model.operation_names:
        shape = model.operation_model(op).input_shape
        variants = list(broken_variants(shape)) if shape is not None else [{}]
        for body in variants:
            r = call(server, op, body)
            try:
                payload = r.json()
            except ValueError:
                payload = None
            if r.status_code >= 500 and r.status_code != 501 or payload is None or (
                r.status_code != 200 and "__type" not in payload
            ):
                problems.append((op, body if len(json.dumps(body)) < 300 else "<long>", r.status_code, r.text[:200]))
    assert not problems, problems[:10]
    assert "Traceback" not in server.test_log(), server.test_log()[-4000:]


def test_registry_answers_odd_requests_with_oci_errors(server, reg):
    rng = random.Random(5)
    paths = ["/v2/", "/v2/_catalog?n=-1", "/v2/_catalog?n=abc", "/v2/a/tags/list?n=5&last=%ff",
             "/v2/fuzz/app/manifests/" + "x" * 300, "/v2/fuzz/app/blobs/sha256:zz",
             "/v2/fuzz/app/blobs/uploads/../../etc/passwd", "/v2/fuzz/app/referrers/nope",
             "/v2/UPPER/manifests/v1", "/v2//manifests/v1", "/v2/fuzz/app/blobs/uploads/%2e%2e",
             "/v2/fuzz/app/manifests/v1?digest=sha256:1", "/not-v2", "/v2/fuzz/app/blobs/uploads/x?digest=bad"]
    methods = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
    bodies = [b"", b"{", b"\x00" * 100, json.dumps({"schemaVersion": 2}).encode()]
    for _ in range(300):
        path, method, body = rng.choice(paths), rng.choice(methods), rng.choice(bodies)
        headers = {"Content-Type": rng.choice(["application/json", "application/vnd.oci.image.manifest.v1+json",
                                               "text/plain"]),
                   "Content-Range": rng.choice(["0-0", "5-1", "bytes=1-2", "x"])}
        r = reg.request(method, path, data=body, headers=headers)
        assert r.status_code < 500, (method, path, r.status_code, r.text[:200])
        if r.status_code >= 400 and method != "HEAD" and r.status_code != 401:
            assert "errors" in r.json(), (method, path, r.text[:200])
    assert "Traceback" not in server.test_log(), server.test_log()[-4000:]
