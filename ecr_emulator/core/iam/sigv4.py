"""AWS Signature Version 4 on the server side: read the credential, and verify the signature.

Both forms are read: the ``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
Signature=...`` header, and the presigned query string (``X-Amz-Credential``, ``X-Amz-Signature``,
...). Verification recomputes the signature with botocore's own canonicalisation (``SigV4Auth``:
path and query encoding, header trimming, the string to sign, the key derivation), so whatever
botocore signs verifies here. The time window is AWS's: ``X-Amz-Date`` within 15 minutes of the
(emulator) clock, a presigned URL until ``X-Amz-Date + X-Amz-Expires``. Errors carry AWS's words.
"""

from __future__ import annotations

import calendar
import hmac
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from botocore.auth import UNSIGNED_PAYLOAD, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from ecr_emulator.core import errors

ALGORITHM = "AWS4-HMAC-SHA256"
AMZ_FORMAT = "%Y%m%dT%H%M%SZ"
SKEW_SECONDS = 15 * 60
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_QUERY_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders")


@dataclass(frozen=True)
class SignedRequest:
    """An HTTP request as SigV4 sees it."""

    method: str
    path: str  # as sent, percent-encoded
    query: str  # as sent
    headers: tuple[tuple[str, str], ...]
    body_sha256: str

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)

    def query_pairs(self) -> list[tuple[str, str]]:
        pairs = []
        for item in self.query.split("&"):
            if item:
                key, _, value = item.partition("=")
                pairs.append((unquote(key), unquote(value)))
        return pairs


@dataclass(frozen=True)
class Credential:
    """What a request claims: key and scope, and (when signed) the signature and its inputs."""

    access_key: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str | None
    timestamp: str | None
    expires: str | None  # presigned only
    security_token: str | None
    presigned: bool


def _incomplete(message: str) -> errors.IncompleteSignatureException:
    return errors.IncompleteSignatureException(message)


def _scope(value: str) -> tuple[str, str, str, str, str]:
    parts = value.split("/")
    if len(parts) != 5 or not all(parts):
        raise _incomplete(
            f"Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
            f"got '{value}'"
        )
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def _header_params(header: str) -> dict[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    if scheme != ALGORITHM:
        return params
    for part in rest.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise _incomplete(f"'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: "
                              f"'{header}'.")
        params[key.strip()] = value.strip()
    return params


def read(request: SignedRequest, strict: bool) -> Credential:
    """The credential a request carries. ``strict`` (signatures verified) also requires everything a
    signature needs; otherwise the credential scope alone names key and region."""
    header = request.header("Authorization")
    if header is None:
        query = dict(request.query_pairs())
        if "X-Amz-Credential" in query or "X-Amz-Algorithm" in query:
            return _read_query(query, strict)
        raise errors.MissingAuthenticationTokenException("Missing Authentication Token")
    params = _header_params(header)
    timestamp = request.header("X-Amz-Date") or _from_http_date(request.header("Date"))
    missing = [f"Authorization header requires '{p}' parameter." for p in ("Credential", "Signature", "SignedHeaders")
               if p not in params and (strict or p == "Credential")]
    if strict and timestamp is None:
        missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    if missing:
        raise _incomplete(" ".join(missing) + f" Authorization={header}")
    key, date, region, service, terminator = _scope(params["Credential"])
    return Credential(key, date, region, service, terminator, _signed(params.get("SignedHeaders", "")),
                      params.get("Signature"), timestamp, None, request.header("X-Amz-Security-Token"), False)


def _read_query(query: dict[str, str], strict: bool) -> Credential:
    required = _QUERY_PARAMS if strict else ("X-Amz-Credential",)
    if any(p not in query for p in required) or query.get("X-Amz-Algorithm", ALGORITHM) != ALGORITHM:
        raise _incomplete(
            "AWS query-string parameters must include " + ", ".join(f"'{p}'" for p in _QUERY_PARAMS)
            + ". Re-examine the query-string parameters."
        )
    key, date, region, service, terminator = _scope(query["X-Amz-Credential"])
    return Credential(key, date, region, service, terminator, _signed(query.get("X-Amz-SignedHeaders", "")),
                      query.get("X-Amz-Signature"), query.get("X-Amz-Date"), query.get("X-Amz-Expires", ""),
                      query.get("X-Amz-Security-Token"), True)


def _signed(value: str) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in value.split(";") if h.strip())


def _from_http_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).strftime(AMZ_FORMAT)
    except (TypeError, ValueError):
        return value  # reported as not ISO 8601 when it matters


def _epoch(timestamp: str) -> float:
    try:
        return float(calendar.timegm(time.strptime(timestamp, AMZ_FORMAT)))
    except ValueError as exc:
        raise _incomplete(
            f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ) from exc


def _stamp(epoch: float) -> str:
    return time.strftime(AMZ_FORMAT, time.gmtime(epoch))


def check_window(cred: Credential, now: float) -> None:
    """AWS's clock rules: the scope's date is the request's, and the request is recent."""
    assert cred.timestamp is not None
    signed_at = _epoch(cred.timestamp)
    if cred.date != cred.timestamp[:8]:
        raise errors.InvalidSignatureException(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{cred.date}' != '{cred.timestamp[:8]}', from '{cred.timestamp}'."
        )
    if signed_at > now + SKEW_SECONDS:
        raise errors.InvalidSignatureException(
            f"Signature not yet current: {cred.timestamp} is still later than {_stamp(now + SKEW_SECONDS)} "
            f"({_stamp(now)} + 15 min.)"
        )
    if cred.presigned:
        if not (cred.expires or "").isdigit() or not 1 <= int(cred.expires or 0) <= MAX_PRESIGN_SECONDS:
            raise _incomplete(f"X-Amz-Expires must be a whole number of seconds from 1 to {MAX_PRESIGN_SECONDS}, "
                              f"got '{cred.expires}'")
        lifetime = int(cred.expires or 0)
        if now > signed_at + lifetime:
            raise errors.InvalidSignatureException(
                f"Signature expired: {cred.timestamp} is now earlier than {_stamp(now - lifetime)} "
                f"({_stamp(now)} - {lifetime} sec.)"
            )
    elif signed_at < now - SKEW_SECONDS:
        raise errors.InvalidSignatureException(
            f"Signature expired: {cred.timestamp} is now earlier than {_stamp(now - SKEW_SECONDS)} "
            f"({_stamp(now)} - 15 min.)"
        )


class _Recompute(SigV4Auth):
    """botocore's signer, fed the request as received: only the headers the client signed, and the
    body hash of the bytes that arrived."""

    def __init__(self, cred: Credential, secret: str, payload: str) -> None:
        super().__init__(Credentials(cred.access_key, secret), cred.service, cred.region)
        self._signed_names = set(cred.signed_headers)
        self._payload = payload

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed_names:
                chosen[name.lower()] = value
        return chosen

    def payload(self, request: AWSRequest) -> str:
        return self._payload


def expected_signature(request: SignedRequest, cred: Credential, secret: str) -> str:
    headers = HTTPHeaders()
    for name, value in request.headers:
        headers[name] = value
    params = [(k, v) for k, v in request.query_pairs() if k != "X-Amz-Signature"] if cred.presigned else []
    if not cred.presigned and request.query:
        params = request.query_pairs()
    aws = AWSRequest(method=request.method, url="http://signed" + (request.path or "/"), headers=headers,
                     params=params)
    aws.context["timestamp"] = cred.timestamp
    signer = _Recompute(cred, secret, request.body_sha256)
    return signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)), aws)


def verify(request: SignedRequest, cred: Credential, secret: str, now: float) -> None:
    """Raise InvalidSignatureException unless ``request`` carries ``cred``'s valid, current signature."""
    if cred.terminator != "aws4_request":
        raise errors.InvalidSignatureException(
            f"Credential should be scoped with a valid terminator: 'aws4_request', not '{cred.terminator}'. ")
    if cred.service != "ecr":
        raise errors.InvalidSignatureException("Credential should be scoped to correct service: 'ecr'. ")
    check_window(cred, now)
    content_hash = request.header("X-Amz-Content-SHA256")
    if content_hash not in (None, UNSIGNED_PAYLOAD, request.body_sha256):
        raise errors.InvalidSignatureException.mismatch()
    expected = expected_signature(request, cred, secret)
    if not hmac.compare_digest(expected.encode(), (cred.signature or "").encode("utf-8", "replace")):
        raise errors.InvalidSignatureException.mismatch()
