"""Registry-wide documents of one (account, region), and the ECR account settings among them.

A request reads them all at its first ``get`` (one statement; a registry has a handful) and
keeps them for the rest of its unit of work, which its own ``put`` and ``remove`` keep up to
date: a push asks for the scanning and the replication configuration, DescribeImages for the
scanning one per image.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, bindparam, func, select, type_coerce

from ecr_emulator.core import errors
from ecr_emulator.core.context import Context
from ecr_emulator.storage.models import RegistrySetting
from ecr_emulator.storage.prepared import Prepared

# name -> (default, accepted values). ECR-BEHAVIOUR 13.4.
ACCOUNT_SETTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "BASIC_SCAN_TYPE_VERSION": ("AWS_NATIVE", ("AWS_NATIVE", "CLAIR")),
    "REGISTRY_POLICY_SCOPE": ("V2", ("V1", "V2")),
    "BLOB_MOUNTING": ("DISABLED", ("ENABLED", "DISABLED")),
}


_ALL = Prepared(select(RegistrySetting.name, RegistrySetting.value).where(
    RegistrySetting.account_id == bindparam("account"), RegistrySetting.region == bindparam("region")))


def all_as_one(dialect: str) -> Any:
    """A scalar subquery giving every document of the (``account``, ``region``) registry as one
    JSON object (name -> value; NULL or ``{}`` for none), so that another statement can bring
    them along (authorization does: see ``read_ahead``)."""
    if dialect == "postgresql":
        together = func.json_object_agg(RegistrySetting.name, RegistrySetting.value)
    else:
        together = func.json_group_object(RegistrySetting.name, func.json(RegistrySetting.value))
    return (select(type_coerce(together, JSON))
            .where(RegistrySetting.account_id == bindparam("account"), RegistrySetting.region == bindparam("region"))
            .scalar_subquery())


def read_ahead(ctx: Context, documents: dict[str, Any]) -> None:
    """Every document of the caller's registry, just read in this unit by another statement
    (``all_as_one``): the unit's ``get`` calls need no statement of their own."""
    ctx.memo.setdefault(("settings", ctx.scope), documents)


def _stored(ctx: Context) -> dict[str, Any]:
    key = ("settings", ctx.scope)
    found = ctx.memo.get(key)
    if found is None:
        params = {"account": ctx.scope.account_id, "region": ctx.scope.region}
        found = ctx.memo[key] = dict(_ALL.all(ctx.session, params))
    return found


def get(ctx: Context, name: str, default: Any = None) -> Any:
    found = _stored(ctx)
    return found[name] if name in found else default


def put(ctx: Context, name: str, value: Any) -> None:
    row = ctx.session.get(RegistrySetting, (ctx.scope.account_id, ctx.scope.region, name))
    if row is None:
        ctx.session.add(RegistrySetting(account_id=ctx.scope.account_id, region=ctx.scope.region,
                                        name=name, value=value))
    else:
        row.value = value
    ctx.session.flush()
    _stored(ctx)[name] = value


def remove(ctx: Context, name: str) -> bool:
    row = ctx.session.get(RegistrySetting, (ctx.scope.account_id, ctx.scope.region, name))
    if row is None:
        return False
    ctx.session.delete(row)
    ctx.session.flush()
    _stored(ctx).pop(name, None)
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
