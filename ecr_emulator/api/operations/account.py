"""Account settings (GetAccountSetting / PutAccountSetting)."""

from __future__ import annotations

from typing import Any

from ecr_emulator.api.operations import operation
from ecr_emulator.core import settings_store
from ecr_emulator.core.context import Context


@operation("GetAccountSetting", write=False)
def get_account_setting(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"name": p["name"], "value": settings_store.account_setting(ctx, p["name"])}


@operation("PutAccountSetting")
def put_account_setting(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    return {"name": p["name"], "value": settings_store.put_account_setting(ctx, p["name"], p["value"])}
