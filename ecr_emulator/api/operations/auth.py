"""GetAuthorizationToken."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core import auth
from ecr_emulator.core.context import Context


@operation("GetAuthorizationToken", write=False)
def get_authorization_token(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"authorizationData": auth.authorization_data(ctx, p.get("registryIds"))}
