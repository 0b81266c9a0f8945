"""The upstream client on its own (fast, in-process): the Bearer-token flow as Docker Hub runs it,
a CDN redirect that must not receive the registry's token, and how refusals are classified.

The registry here is a few lines of ``http.server`` playing Docker Hub's protocol (401 with a
Bearer challenge, a token service taking Basic credentials, blobs redirected to another host); the
Basic flow and everything else runs against CNCF Distribution in test_pullthrough_pulls.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from ecr_emulator.core.pullthrough.client import (
    DENIED,
    NOT_FOUND,
    THROTTLED,
    UNAVAILABLE,
    RegistryClient,
    UpstreamError,
    parse_challenge,
)
from ecr_emulator.core.pullthrough.secrets import Credentials

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
                                  "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest()},
                       "layers": []}).encode()
BLOB = b"layer bytes " * 1000
BLOB_DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


class Hub:
    """Docker Hub's protocol in miniature, on 127.0.0.1; its CDN on 127.0.0.2 (another host)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []  # (host, path, Authorization)
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                auth = self.headers.get("Authorization")
                hub.seen.append((self.headers.get("Host", ""), url.path, auth))
                if url.path == "/token":
                    q = parse_qs(url.query)
                    good = "Basic " + base64.b64encode(b"hubuser:secret").decode()
                    if auth not in (None, good):
                        return self._send(401, b'{"details":"incorrect username or password"}')
                    scope = q.get("scope", [""])[0]
                    token = ("user:" if auth else "anon:") + scope
                    return self._send(200, json.dumps({"token": token, "expires_in": 300}).encode())
                if url.path.startswith("/cdn/"):
                    return self._send(200, BLOB)
                challenge = f'Bearer realm="http://127.0.0.1:{hub.port}/token",service="registry.docker.io"'
                repo = url.path.split("/")[2:4]
                scope = f"repository:{'/'.join(repo)}:pull"
                if url.path.startswith("/v2/ratelimited/"):
                    return self._send(429, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}')
                if auth not in (f"Bearer user:{scope}", f"Bearer anon:{scope}", "Bearer user:"):
                    return self._send(401, b"", {"WWW-Authenticate": challenge})
                if url.path == "/v2/":
                    return self._send(200, b"{}")
                if auth.startswith("Bearer anon:") and repo[0] == "private":
                    return self._send(401, b"", {"WWW-Authenticate": challenge})
                if url.path.endswith("/manifests/latest"):
                    return self._send(200, MANIFEST, {"Content-Type": "application/vnd.oci.image.manifest.v1+json",
                                                      "Docker-Content-Digest": "sha256:" +
                                                      hashlib.sha256(MANIFEST).hexdigest()})
                if url.path.endswith(f"/blobs/{BLOB_DIGEST}"):
                    return self._send(307, b"", {"Location": f"http://127.0.0.2:{hub.port}/cdn/{BLOB_DIGEST}"})
                return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

        self.server = ThreadingHTTPServer(("0.0.0.0", 0), Handler)  # 127.0.0.1 (registry) and 127.0.0.2 (CDN)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def client(self, creds: Credentials | None) -> RegistryClient:
        return RegistryClient(f"http://127.0.0.1:{self.port}", creds, timeout=5)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub():
    h = Hub()
    yield h
    h.stop()


def test_bearer_flow_with_credentials_and_cdn_redirect(hub):
    with hub.client(Credentials("hubuser", "secret")) as client:
        client.check()
        raw, media_type, digest = client.manifest("library/alpine", "latest")
        assert raw == MANIFEST and media_type == "application/vnd.oci.image.manifest.v1+json"
        assert digest == "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
        with client.blob("library/alpine", BLOB_DIGEST, len(BLOB)) as chunks:
            assert b"".join(chunks) == BLOB
    tokens = [auth for _, path, auth in hub.seen if path == "/token"]
    assert tokens and all(auth and auth.startswith("Basic ") for auth in tokens)
    cdn = [(host, auth) for host, path, auth in hub.seen if path.startswith("/cdn/")]
    assert cdn == [(f"127.0.0.2:{hub.port}", None)]  # the registry's token never leaves its host
    # one token per repository scope, reused for the manifest and the blob
    assert len([p for _, p, _ in hub.seen if p == "/token"]) == 2  # /v2/ (no scope) and library/alpine


def test_anonymous_tokens_and_refusals(hub):
    with hub.client(None) as client:
        assert client.manifest("library/alpine", "latest")[0] == MANIFEST
        with pytest.raises(UpstreamError) as exc:
            client.manifest("private/thing", "latest")
        assert exc.value.kind == DENIED
        with pytest.raises(UpstreamError) as exc:
            client.manifest("library/alpine", "nope")
        assert exc.value.kind == NOT_FOUND
        with pytest.raises(UpstreamError) as exc:
            client.manifest("ratelimited/x", "latest")
        assert exc.value.kind == THROTTLED
        with pytest.raises(UpstreamError) as exc, client.blob("library/alpine", BLOB_DIGEST, 10) as chunks:
            b"".join(chunks)
        assert exc.value.kind == NOT_FOUND and "more than the 10 bytes" in exc.value.message
    with hub.client(Credentials("hubuser", "wrong")) as client, pytest.raises(UpstreamError) as exc:
        client.check()
    assert exc.value.kind == DENIED and "refused the credentials" in exc.value.message


def test_digest_checks_and_unreachable_upstream(hub):
    with hub.client(None) as client:
        with pytest.raises(UpstreamError) as exc:  # the bytes are not what the digest names
            client.manifest("library/alpine", "sha256:" + "0" * 64)
        assert exc.value.kind == NOT_FOUND
    hub.stop()
    with hub.client(None) as client, pytest.raises(UpstreamError) as exc:
        client.check()
    assert exc.value.kind == UNAVAILABLE and "could not be reached" in exc.value.message


def test_parse_challenge():
    c = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                        'scope="repository:library/alpine:pull"')
    assert c is not None and c.scheme == "bearer"
    assert c.params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                        "scope": "repository:library/alpine:pull"}
    assert parse_challenge('Basic realm="upstream"') == type(c)("basic", {"realm": "upstream"})
    assert parse_challenge("") is None
