"""An upstream registry, as a client of its OCI distribution API: ``requests``, bodies streamed.

Authentication follows the registry's challenge, as docker and containerd do: a request without
credentials; on ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,scope=...`` a token
from the realm (with the rule's credentials as HTTP Basic when it has some, anonymously
otherwise), then the request again with that token; on a ``Basic`` challenge the request again
with the credentials. Tokens are kept for the client's life (one fetch). Redirects (blobs served
from a CDN) are followed; ``requests`` drops the ``Authorization`` header when one leaves the host.

Every failure is an ``UpstreamError`` of one of four kinds, the distinctions ECR's
``ImageFailureCode`` makes: not found, denied, too many requests, unavailable.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import requests

from ecr_emulator.core.manifests import DOCKER_LIST, DOCKER_V2, OCI_INDEX, OCI_MANIFEST
from ecr_emulator.core.pullthrough.secrets import Credentials

NOT_FOUND, DENIED, THROTTLED, UNAVAILABLE = "not-found", "denied", "throttled", "unavailable"
ACCEPT = ", ".join([OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_V2])
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # ECR's limit on a manifest
CHUNK = 1024 * 1024
_CHALLENGE = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


class UpstreamError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer" | "basic"
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """``WWW-Authenticate: Bearer realm="...",service="..."`` -> Challenge (first scheme only)."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params = {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _CHALLENGE.finditer(rest)}
    return Challenge(scheme.lower(), params)


def _status_error(resp: requests.Response, what: str) -> UpstreamError:
    code = resp.status_code
    detail = f"{what}: the upstream registry answered HTTP {code}"
    if code == 404:
        return UpstreamError(NOT_FOUND, detail)
    if code in (401, 403):
        return UpstreamError(DENIED, detail)
    if code == 429:
        return UpstreamError(THROTTLED, detail)
    if 400 <= code < 500:
        return UpstreamError(NOT_FOUND, detail)  # a name or reference the upstream refuses outright
    return UpstreamError(UNAVAILABLE, detail)


class RegistryClient:
    """One upstream registry at ``base_url`` (``https://host``, or what ``--upstream-endpoint``
    maps the host to)."""

    def __init__(self, base_url: str, credentials: Credentials | None, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "ecr-emulator (pull through cache)"
        self._tokens: dict[str, str] = {}  # scope -> bearer token
        self._basic = False  # the registry asked for Basic credentials

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- requests, authenticated as the registry asks

    def _auth(self, scope: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._tokens[scope]}"} if scope in self._tokens else {}

    def _send(self, method: str, path: str, scope: str, headers: dict[str, str], what: str) -> requests.Response:
        url = self.base_url + path
        auth = (self.credentials.username, self.credentials.password) if self._basic and self.credentials else None
        try:
            resp = self.session.request(method, url, headers={**headers, **self._auth(scope)}, auth=auth,
                                        stream=True, timeout=(self.timeout, self.timeout), allow_redirects=True)
            if resp.status_code != 401:
                return resp
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            resp.close()
            if challenge is None or (challenge.scheme == "bearer" and scope in self._tokens) or \
                    (challenge.scheme == "basic" and self._basic):
                raise UpstreamError(DENIED, f"{what}: the upstream registry refused the credentials (HTTP 401)")
            if challenge.scheme == "bearer":
                self._tokens[scope] = self._token(challenge, scope, what)
            elif challenge.scheme == "basic":
                if self.credentials is None:
                    raise UpstreamError(DENIED, f"{what}: the upstream registry requires credentials and the rule "
                                                "has none (credentialArn)")
                self._basic = True
            else:
                raise UpstreamError(DENIED, f"{what}: unsupported authentication scheme '{challenge.scheme}'")
            return self._send(method, path, scope, headers, what)
        except requests.RequestException as exc:
            raise UpstreamError(UNAVAILABLE, f"{what}: the upstream registry could not be reached "
                                             f"({type(exc).__name__}: {exc})") from None

    def _token(self, challenge: Challenge, scope: str, what: str) -> str:
        realm = challenge.params.get("realm")
        if not realm or not re.match(r"https?://", realm):
            raise UpstreamError(DENIED, f"{what}: the upstream registry's token challenge names no realm")
        params = {k: v for k, v in (("service", challenge.params.get("service")),
                                    ("scope", scope or challenge.params.get("scope"))) if v}
        auth = (self.credentials.username, self.credentials.password) if self.credentials else None
        resp = self.session.get(realm, params=params, auth=auth, timeout=(self.timeout, self.timeout))
        if resp.status_code in (401, 403):
            raise UpstreamError(DENIED, f"{what}: the upstream registry's token service refused the credentials "
                                        f"(HTTP {resp.status_code})")
        if resp.status_code != 200:
            raise _status_error(resp, f"{what} (token)")
        try:
            body = resp.json()
        except ValueError:
            body = None
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise UpstreamError(UNAVAILABLE, f"{what}: the upstream registry's token service answered no token")
        return token

    # ---- what the cache asks

    def check(self) -> None:
        """Reach the registry and authenticate (ValidatePullThroughCacheRule)."""
        resp = self._send("GET", "/v2/", "", {}, "checking the upstream registry")
        with resp:
            if resp.status_code != 200:
                raise _status_error(resp, "checking the upstream registry")

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str | None, str]:
        """(exact bytes, Content-Type, digest) of a manifest; the digest is verified: against the
        reference when it is one, and against the ``Docker-Content-Digest`` the registry sent."""
        what = f"manifest {repository}:{reference}" if ":" not in reference else f"manifest {repository}@{reference}"
        path = f"/v2/{quote(repository)}/manifests/{quote(reference, safe=':')}"
        resp = self._send("GET", path, f"repository:{repository}:pull", {"Accept": ACCEPT}, what)
        with resp:
            if resp.status_code != 200:
                raise _status_error(resp, what)
            data = bytearray()
            try:
                for chunk in resp.iter_content(CHUNK):
                    data += chunk
                    if len(data) > MAX_MANIFEST_BYTES:
                        raise UpstreamError(NOT_FOUND, f"{what}: larger than {MAX_MANIFEST_BYTES} bytes")
            except requests.RequestException as exc:
                raise UpstreamError(UNAVAILABLE, f"{what}: the upstream registry broke off ({exc})") from None
            raw = bytes(data)
            digest = "sha256:" + hashlib.sha256(raw).hexdigest()
            sent = resp.headers.get("Docker-Content-Digest", "")
            if ":" in reference and reference != digest:
                raise UpstreamError(NOT_FOUND, f"{what}: the upstream registry sent bytes whose digest is {digest}")
            if sent.startswith("sha256:") and sent != digest:
                raise UpstreamError(NOT_FOUND, f"{what}: the upstream registry named digest {sent} for bytes whose "
                                               f"digest is {digest}")
            media_type = (resp.headers.get("Content-Type") or "").split(";", 1)[0].strip() or None
            return raw, media_type, digest

    @contextmanager
    def blob(self, repository: str, digest: str, size: int | None) -> Iterator[Iterator[bytes]]:
        """The blob's bytes as they arrive; more than ``size`` of them (when known) is an error,
        so a misbehaving upstream cannot fill the disk. The digest is the caller's to verify."""
        what = f"blob {repository}@{digest}"
        resp = self._send("GET", f"/v2/{quote(repository)}/blobs/{digest}", f"repository:{repository}:pull", {},
                          what)
        with resp:
            if resp.status_code != 200:
                raise _status_error(resp, what)

            def chunks() -> Iterator[bytes]:
                received = 0
                try:
                    for chunk in resp.iter_content(CHUNK):
                        received += len(chunk)
                        if size is not None and received > size:
                            raise UpstreamError(NOT_FOUND, f"{what}: the upstream registry sent more than the "
                                                           f"{size} bytes the manifest declares")
                        yield chunk
                except requests.RequestException as exc:
                    raise UpstreamError(UNAVAILABLE, f"{what}: the upstream registry broke off after {received} "
                                                     f"bytes ({exc})") from None

            yield chunks()
