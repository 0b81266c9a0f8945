"""The registry's signing configuration (Put/Get/DeleteSigningConfiguration).

Rules name an AWS Signer signing profile and, optionally, ``WILDCARD_MATCH`` repository filters
(``*`` is any run of characters and a filter matches the whole name: ``myapp/*``, ``*/production``,
``*prod*``); a rule without filters covers every repository (ECR's SigningRule documentation). The
model bounds rules (0..10), filters (1..100 per rule), the filter grammar and the profile ARN; the
protocol layer enforces those, so what reaches ``put`` is well-formed.
"""

from __future__ import annotations

from typing import Any

from ecr_emulator.core import errors, settings_store
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import wildcard_regex

SETTING = "signing"


def _stored(ctx: Context) -> dict[str, Any]:
    stored = settings_store.get(ctx, SETTING)
    if stored is None:
        raise errors.SigningConfigurationNotFoundException(ctx.registry_id)
    return stored


def get(ctx: Context) -> dict[str, Any]:
    return _stored(ctx)


def put(ctx: Context, document: dict[str, Any]) -> dict[str, Any]:
    """Replace the configuration wholesale; returns it as stored (and echoed)."""
    rules = []
    for rule in document["rules"]:
        out: dict[str, Any] = {"signingProfileArn": rule["signingProfileArn"]}
        if rule.get("repositoryFilters"):
            out["repositoryFilters"] = [{"filter": f["filter"], "filterType": f["filterType"]}
                                        for f in rule["repositoryFilters"]]
        rules.append(out)
    stored = {"rules": rules}
    settings_store.put(ctx, SETTING, stored)
    return stored


def delete(ctx: Context) -> dict[str, Any]:
    stored = _stored(ctx)
    settings_store.remove(ctx, SETTING)
    return stored


def matches(rule: dict[str, Any], repository_name: str) -> bool:
    filters = rule.get("repositoryFilters") or []
    return not filters or any(wildcard_regex(f["filter"]).fullmatch(repository_name) for f in filters)


def profiles_for(ctx: Context, repository_name: str) -> list[str]:
    """The signing profiles a push to ``repository_name`` is signed with: one per distinct profile
    among the matching rules, in rule order."""
    stored = settings_store.get(ctx, SETTING)
    if stored is None:
        return []
    found = [rule["signingProfileArn"] for rule in stored["rules"] if matches(rule, repository_name)]
    return list(dict.fromkeys(found))
