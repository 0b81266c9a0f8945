"""GetAuthorizationToken: one signed, expiring registry password per requested registry."""

from __future__ import annotations

from typing import Any

from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import Scope


def authorization_data(ctx: Context, registry_ids: list[str] | None) -> list[dict[str, Any]]:
    """registryIds is deprecated in ECR: it only chooses which proxyEndpoints are listed; the
    token itself is the caller's and works wherever the caller may go in this region."""
    token, expires = ctx.services.tokens.issue(ctx.scope, ctx.principal, ctx.now)
    ids = registry_ids or [ctx.scope.account_id]
    return [
        {
            "authorizationToken": token,
            "expiresAt": expires,
            "proxyEndpoint": ctx.hosts.proxy_endpoint(Scope(rid, ctx.scope.region)),
        }
        for rid in ids
    ]
