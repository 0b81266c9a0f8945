"""Registry passwords: signed, expiring, naming account, region and principal (its ARN).

``GetAuthorizationToken`` returns ``base64("AWS:" + password)``. The password is
``<payload>.<signature>`` in unpadded base64url (so it never contains ``:``, which the AWS CLI
splits on), signed with HMAC-SHA256 under a secret shared by every replica. Nothing is stored:
any replica verifies any token, and a restart keeps tokens valid until they expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from ecr_emulator.core.naming import Principal, Scope


@dataclass(frozen=True)
class TokenClaims:
    scope: Scope
    principal: Principal
    issued_at: float
    expires_at: float


class TokenError(Exception):
    """Why a password was refused: ``expired`` is told apart because ECR words it differently."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that also takes text no signature could contain (non-ASCII)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def load_or_create_secret(configured: str, data_dir: Path) -> bytes:
    if configured:
        return configured.encode()
    path = data_dir / "token-secret"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(secret)
    tmp.chmod(0o600)
    tmp.replace(path)
    return path.read_bytes().strip()


class TokenSigner:
    def __init__(self, secret: bytes, ttl: float) -> None:
        self._secret = secret
        self.ttl = ttl

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, scope: Scope, principal: Principal, now: float) -> tuple[str, float]:
        """Returns (authorizationToken, expiresAt)."""
        expires = round(now + self.ttl, 3)
        claims = {
            "a": scope.account_id,
            "r": scope.region,
            "pa": principal.account_id,
            "pk": principal.access_key_id,
            "p": principal.arn,  # the registry judges this principal by the policies in force at request time
            "pe": principal.entity_arn,
            "pt": principal.kind,
            "i": round(now, 3),
            "e": expires,
            "n": secrets.token_hex(6),
        }
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        password = f"{payload}.{self._sign(payload)}"
        return base64.b64encode(f"AWS:{password}".encode()).decode(), expires

    def verify_password(self, password: str, now: float) -> TokenClaims:
        payload, sep, signature = password.partition(".")
        if not sep or not _same(signature, self._sign(payload)):
            raise TokenError("signature does not match")
        try:
            claims = json.loads(_unb64(payload))
            result = TokenClaims(
                scope=Scope(claims["a"], claims["r"]),
                principal=Principal(claims["pa"], claims["pk"], claims.get("p", ""), claims.get("pe", ""),
                                    claims.get("pt", "Account")),
                issued_at=float(claims["i"]),
                expires_at=float(claims["e"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenError("malformed token") from exc
        if now >= result.expires_at:
            raise TokenError("expired", expired=True)
        return result

    def verify_basic(self, authorization: str | None, now: float) -> TokenClaims:
        """Check an ``Authorization: Basic base64(AWS:<password>)`` header."""
        if not authorization:
            raise TokenError("no credentials")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise TokenError("not basic auth")
        try:
            user, _, password = base64.b64decode(value.strip(), validate=False).decode().partition(":")
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenError("malformed basic credentials") from exc
        if user != "AWS":
            raise TokenError("user must be AWS")
        return self.verify_password(password, now)

    # Download URLs (GetDownloadUrlForLayer) are signed with the same secret.
    def sign_url(self, text: str) -> str:
        return self._sign(text)

    def check_url(self, text: str, signature: str) -> bool:
        return _same(signature, self._sign(text))
