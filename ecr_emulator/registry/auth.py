"""ECR login on the registry: HTTP Basic ``AWS:<password>`` checked on every request.

The registry a request addresses comes from the Host (``<account>.dkr.ecr.<region>.<domain>``)
or is the default registry. No or bad credentials get ECR's 401 Basic challenge; an expired
token gets ECR's 403 DENIED wording; a token of another region or of an account that may not
use this registry gets 403 DENIED.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Request, Response

from ecr_emulator.core.context import Services
from ecr_emulator.core.naming import Principal, Scope
from ecr_emulator.core.tokens import TokenError
from ecr_emulator.registry.errors import OciError


@dataclass(frozen=True)
class Caller:
    scope: Scope  # the registry addressed
    principal: Principal


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
    if claims.principal.account_id != scope.account_id:
        raise OciError(
            "DENIED",
            f"User: {claims.principal.access_key_id} (account {claims.principal.account_id}) is not authorized "
            f"to access the registry with id '{scope.account_id}': no resource-based policy allows it",
        )
    return Caller(scope, claims.principal)
