"""Registry-wide documents of one (account, region), and the ECR account settings among them."""

from __future__ import annotations

from typing import Any

from ecr_emulator.core import errors
from ecr_emulator.core.context import Context
from ecr_emulator.storage.models import RegistrySetting

# name -> (default, accepted values). ECR-BEHAVIOUR 13.4.
ACCOUNT_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BASIC_SCAN_TYPE_VERSION": ("AWS_NATIVE", ("AWS_NATIVE", "CLAIR")),
    "REGISTRY_POLICY_SCOPE": ("V2", ("V1", "V2")),
    "BLOB_MOUNTING": ("DISABLED", ("ENABLED", "DISABLED")),
}


def get(ctx: Context, name: str, default: Any = None) -> Any:
    row = ctx.session.get(RegistrySetting, (ctx.scope.account_id, ctx.scope.region, name))
    return default if row is None else row.value


def put(ctx: Context, name: str, value: Any) -> None:
    row = ctx.session.get(RegistrySetting, (ctx.scope.account_id, ctx.scope.region, name))
    if row is None:
        ctx.session.add(RegistrySetting(account_id=ctx.scope.account_id, region=ctx.scope.region,
                                        name=name, value=value))
    else:
        row.value = value
    ctx.session.flush()


def remove(ctx: Context, name: str) -> bool:
    row = ctx.session.get(RegistrySetting, (ctx.scope.account_id, ctx.scope.region, name))
    if row is None:
        return False
    ctx.session.delete(row)
    ctx.session.flush()
    return True


def _check_name(name: str) -> tuple[str, tuple[str, ...]]:
    if name not in ACCOUNT_SETTINGS:
        raise errors.ValidationException(
            f"Account setting name '{name}' is not supported. Supported names: {', '.join(ACCOUNT_SETTINGS)}"
        )
    return ACCOUNT_SETTINGS[name]


def account_setting(ctx: Context, name: str) -> str:
    default, _ = _check_name(name)
    return get(ctx, f"account:{name}", default)


def put_account_setting(ctx: Context, name: str, value: str) -> str:
    _, accepted = _check_name(name)
    if value not in accepted:
        raise errors.ValidationException(
            f"Value '{value}' is not valid for account setting '{name}'. Valid values: {', '.join(accepted)}"
        )
    put(ctx, f"account:{name}", value)
    return value
