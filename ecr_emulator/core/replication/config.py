"""The registry's replication configuration (PutReplicationConfiguration / DescribeRegistry).

Rules name destinations (a region of this account, or another account) and, optionally,
``PREFIX_MATCH`` repository filters; no filters means every repository. The model limits rules,
destinations and filters per rule; ECR also refuses more than 25 distinct destinations in all and
a destination equal to the source registry. A rule may replicate deletions too
(``deleteReplication``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecr_emulator.core import errors, settings_store
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import Scope

SETTING = "replication"
MAX_DESTINATIONS = 25


@dataclass(frozen=True)
class Destination:
    scope: Scope
    replicate_deletes: bool


def configuration(ctx: Context) -> dict[str, Any]:
    """The stored document, ``{"rules": []}`` on a registry that never set one."""
    stored = settings_store.get(ctx, SETTING)
    return stored if stored is not None else {"rules": []}


def put(ctx: Context, document: dict[str, Any]) -> dict[str, Any]:
    rules = []
    unique: set[tuple[str, str]] = set()
    for i, rule in enumerate(document["rules"]):
        destinations = []
        for dest in rule["destinations"]:
            pair = (dest["registryId"], dest["region"])
            if pair == (ctx.scope.account_id, ctx.scope.region):
                raise errors.InvalidParameterException(
                    "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication "
                    "destination cannot be the same as the source registry'")
            if pair not in {(d["registryId"], d["region"]) for d in destinations}:
                destinations.append({"region": dest["region"], "registryId": dest["registryId"]})
            unique.add(pair)
        out: dict[str, Any] = {"destinations": destinations}
        if rule.get("repositoryFilters"):
            out["repositoryFilters"] = [{"filter": f["filter"], "filterType": f["filterType"]}
                                        for f in rule["repositoryFilters"]]
        if rule.get("deleteReplication") is not None:
            out["deleteReplication"] = {"enabled": bool(rule["deleteReplication"]["enabled"])}
        if not destinations:
            raise errors.InvalidParameterException.constraint(
                f"replicationConfiguration.rules.{i + 1}.member.destinations",
                "Member must have length greater than or equal to 1")
        rules.append(out)
    if len(unique) > MAX_DESTINATIONS:
        raise errors.InvalidParameterException(
            f"Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'A replication "
            f"configuration may name at most {MAX_DESTINATIONS} unique destinations'")
    stored = {"rules": rules}
    settings_store.put(ctx, SETTING, stored)
    return stored


def matches(rule: dict[str, Any], repository_name: str) -> bool:
    filters = rule.get("repositoryFilters") or []
    return not filters or any(repository_name.startswith(f["filter"]) for f in filters)


def destinations_for(ctx: Context, repository_name: str) -> list[Destination]:
    """Every destination a push to ``repository_name`` goes to (once each, deletes replicated if
    any rule naming that destination for this repository says so)."""
    found: dict[Scope, bool] = {}
    for rule in configuration(ctx)["rules"]:
        if not matches(rule, repository_name):
            continue
        deletes = bool((rule.get("deleteReplication") or {}).get("enabled"))
        for dest in rule["destinations"]:
            scope = Scope(dest["registryId"], dest["region"])
            found[scope] = found.get(scope, False) or deletes
    return [Destination(scope, deletes) for scope, deletes in found.items()]
