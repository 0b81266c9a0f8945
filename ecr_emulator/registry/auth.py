"""ECR login on the registry: HTTP Basic ``AWS:<password>`` checked on every request.

The registry a request addresses comes from the Host (``<account>.dkr.ecr.<region>.<domain>``)
or is the default registry. No or bad credentials get ECR's 401 Basic challenge; an expired
token gets ECR's 403 DENIED wording; a token of another region gets 403 DENIED. Whether the
principal a token names may do what it asks is decided per request (``registry/access.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response
from werkzeug.wrappers import Request

from ecr_emulator.core.context import Services
from ecr_emulator.core.naming import Principal, Scope
from ecr_emulator.core.tokens import TokenError
from ecr_emulator.registry.errors import OciError


@dataclass(frozen=True)
class Caller:
    scope: Scope  # the registry addressed
    principal: Principal
    presigned: bool = False  # a GetDownloadUrlForLayer URL, authorized when it was issued


class Unauthorized(Exception):
    """Answered with ECR's bare 401 challenge rather than an OCI error body."""


def challenge(services: Services, scope: Scope) -> Response:
    realm = f"{services.hosts.proxy_endpoint(scope)}/"
    return Response(
        "Not Authorized\n",
        status=401,
        content_type="text/plain; charset=utf-8",
        headers={"WWW-Authenticate": f'Basic realm="{realm}",service="ecr.amazonaws.com"'},
    )


def authenticate(services: Services, request: Request) -> Caller:
    scope = services.hosts.scope_from_host(request.headers.get("Host"))
    try:
        claims = services.tokens.verify_basic(request.headers.get("Authorization"), services.clock.now())
    except TokenError as exc:
        if exc.expired:
            raise OciError("DENIED", "Your authorization token has expired. Reauthenticate and try again.") from exc
        raise Unauthorized() from exc
    if claims.scope.region != scope.region:
        raise OciError(
            "DENIED",
            f"Your authorization token was issued for region '{claims.scope.region}' and is not valid "
            f"for the registry in region '{scope.region}'. Reauthenticate and try again.",
        )
    return Caller(scope, claims.principal)  # another account's registry: its policies decide, per request
