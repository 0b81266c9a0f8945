"""SigV4 verification as a pure function, against requests signed by botocore's own signers."""

from __future__ import annotations

import calendar
import hashlib
import time
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ecr_emulator.core import errors
from ecr_emulator.core.iam import sigv4

KEY, SECRET = "AKIAEXAMPLEEXAMPLE01", "example/secret+key"
URL = "http://127.0.0.1:5001/some%20path/x?b=2&a=1&a=0&sp=a%20b"


def signed(body: bytes = b'{"x": 1}', url: str = URL, token: str | None = None) -> tuple[sigv4.SignedRequest, float]:
    req = AWSRequest(method="POST", url=url, data=body, headers={
        "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories",
        "Content-Type": "application/x-amz-json-1.1", "X-Custom": "  spaced   value "})
    SigV4Auth(Credentials(KEY, SECRET, token), "ecr", "us-east-1").add_auth(req)
    now = calendar.timegm(time.strptime(req.context["timestamp"], sigv4.AMZ_FORMAT))
    parts = urlsplit(url)
    headers = tuple(req.headers.items()) + (("Host", parts.netloc),)
    return sigv4.SignedRequest("POST", parts.path, parts.query, headers, hashlib.sha256(body).hexdigest()), now


def test_header_signatures_verify_with_queries_paths_and_odd_spacing():
    request, now = signed()
    cred = sigv4.read(request, strict=True)
    assert (cred.access_key, cred.region, cred.service, cred.presigned) == (KEY, "us-east-1", "ecr", False)
    sigv4.verify(request, cred, SECRET, now)
    sigv4.verify(request, cred, SECRET, now + 899)
    for tampered in (
        sigv4.SignedRequest(request.method, request.path, "a=1", request.headers, request.body_sha256),
        sigv4.SignedRequest(request.method, request.path, request.query, request.headers, hashlib.sha256(b"").hexdigest()),
        sigv4.SignedRequest("PUT", request.path, request.query, request.headers, request.body_sha256),
        sigv4.SignedRequest(request.method, request.path, request.query,
                            tuple((k, "other" if k == "X-Custom" else v) for k, v in request.headers),
                            request.body_sha256),
    ):
        with pytest.raises(errors.InvalidSignatureException) as e:
            sigv4.verify(tampered, cred, SECRET, now)
        assert e.value.message.startswith("The request signature we calculated does not match")
    with pytest.raises(errors.InvalidSignatureException):
        sigv4.verify(request, cred, SECRET + "x", now)


def test_security_tokens_are_read():
    request, now = signed(token="session-token")
    cred = sigv4.read(request, strict=True)
    assert cred.security_token == "session-token"
    sigv4.verify(request, cred, SECRET, now)


def test_the_clock_window():
    request, now = signed()
    cred = sigv4.read(request, strict=True)
    with pytest.raises(errors.InvalidSignatureException) as e:
        sigv4.verify(request, cred, SECRET, now + 901)
    assert e.value.message == (f"Signature expired: {cred.timestamp} is now earlier than "
                               f"{sigv4._stamp(now + 1)} ({sigv4._stamp(now + 901)} - 15 min.)")
    with pytest.raises(errors.InvalidSignatureException) as e:
        sigv4.verify(request, cred, SECRET, now - 901)
    assert e.value.message.startswith(f"Signature not yet current: {cred.timestamp} is still later than")
    other_day = sigv4.Credential(**{**cred.__dict__, "date": "19990101"})
    with pytest.raises(errors.InvalidSignatureException) as e:
        sigv4.verify(request, other_day, SECRET, now)
    assert "Date in Credential scope does not match YYYYMMDD" in e.value.message


def presigned(expires: int = 60) -> tuple[sigv4.SignedRequest, float]:
    req = AWSRequest(method="GET", url="http://127.0.0.1:5001/?keep=this%2Fvalue",
                     headers={"Host": "127.0.0.1:5001"})
    SigV4QueryAuth(Credentials(KEY, SECRET), "ecr", "us-east-1", expires=expires).add_auth(req)
    now = calendar.timegm(time.strptime(req.context["timestamp"], sigv4.AMZ_FORMAT))
    parts = urlsplit(req.url)
    return sigv4.SignedRequest("GET", "/", parts.query, (("Host", "127.0.0.1:5001"),),
                               hashlib.sha256(b"").hexdigest()), now


def test_presigned_query_strings_verify_until_they_expire():
    request, now = presigned(60)
    cred = sigv4.read(request, strict=True)
    assert cred.presigned and cred.expires == "60"
    sigv4.verify(request, cred, SECRET, now + 60)
    with pytest.raises(errors.InvalidSignatureException) as e:
        sigv4.verify(request, cred, SECRET, now + 61)
    assert e.value.message.startswith("Signature expired:")
    reordered = sigv4.SignedRequest("GET", "/", "&".join(reversed(request.query.split("&"))), request.headers,
                                    request.body_sha256)
    sigv4.verify(reordered, sigv4.read(reordered, strict=True), SECRET, now)
    forever = sigv4.SignedRequest("GET", "/", request.query.replace("X-Amz-Expires=60", "X-Amz-Expires=999999"),
                                  request.headers, request.body_sha256)
    with pytest.raises(errors.IncompleteSignatureException):
        sigv4.verify(forever, sigv4.read(forever, strict=True), SECRET, now)


def test_reading_without_verification_needs_only_the_credential():
    lenient = sigv4.SignedRequest("POST", "/", "", (("Authorization",
                                                     "AWS4-HMAC-SHA256 Credential=k/20260101/eu-west-1/ecr/aws4_request"),),
                                  "")
    assert sigv4.read(lenient, strict=False).region == "eu-west-1"
    with pytest.raises(errors.IncompleteSignatureException):
        sigv4.read(lenient, strict=True)
    with pytest.raises(errors.MissingAuthenticationTokenException):
        sigv4.read(sigv4.SignedRequest("POST", "/", "", (), ""), strict=False)
