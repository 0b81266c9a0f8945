"""Repository and registry permission policies: validated, stored, and returned the way ECR
returns them (re-serialised by its JSON library's pretty printer).

The emulator stores and validates these documents; it does not evaluate them yet (every
caller of an account may use that account's registry, and no other account may).
"""

from __future__ import annotations

import json
from typing import Any

from ecr_emulator.core import errors, repositories, settings_store
from ecr_emulator.core.context import Context

VERSIONS = ("2012-10-17", "2008-10-17")
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource",
                  "NotResource", "Condition"}


def pretty(value: Any, nesting: int = 0) -> str:
    """Jackson's default pretty printer, which is what ECR's policy texts come back in:
    objects break lines with two-space indents, arrays stay inline, ``" : "`` separators."""
    if isinstance(value, dict):
        if not value:
            return "{ }"
        pad = "  " * (nesting + 1)
        items = [f"\n{pad}{json.dumps(k, ensure_ascii=False)} : {pretty(v, nesting + 1)}" for k, v in value.items()]
        return "{" + ",".join(items) + "\n" + "  " * nesting + "}"
    if isinstance(value, list):
        if not value:
            return "[ ]"
        return "[ " + ", ".join(pretty(v, nesting) for v in value) + " ]"
    return json.dumps(value, ensure_ascii=False)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def validate(text: str, kind: str) -> dict[str, Any]:
    """Parse and check a policy document; ``kind`` is "repository" or "registry"."""
    invalid = errors.InvalidParameterException.constraint("PolicyText", f"Invalid {kind} policy provided")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise invalid from exc
    if not isinstance(doc, dict) or not set(doc) <= {"Version", "Id", "Statement"}:
        raise invalid
    if "Version" in doc and doc["Version"] not in VERSIONS:
        raise invalid
    statements = doc.get("Statement")
    if not statements:
        raise invalid
    for st in _as_list(statements):
        if not isinstance(st, dict) or not set(st) <= STATEMENT_KEYS:
            raise invalid
        if st.get("Effect") not in ("Allow", "Deny"):
            raise invalid
        if ("Principal" in st) == ("NotPrincipal" in st):
            raise invalid
        if ("Action" in st) == ("NotAction" in st):
            raise invalid
        for action in _as_list(st.get("Action", st.get("NotAction"))):
            if not isinstance(action, str) or not (action == "*" or action.lower().startswith("ecr:")):
                raise invalid
    return doc


def set_repository_policy(ctx: Context, name: str, text: str) -> str:
    doc = validate(text, "repository")
    repo = repositories.get(ctx, name, for_update=True)
    repo.policy_text = pretty(doc)
    return repo.policy_text


def get_repository_policy(ctx: Context, name: str) -> str:
    repo = repositories.get(ctx, name)
    if repo.policy_text is None:
        raise errors.RepositoryPolicyNotFoundException(name, ctx.registry_id)
    return repo.policy_text


def delete_repository_policy(ctx: Context, name: str) -> str:
    repo = repositories.get(ctx, name, for_update=True)
    if repo.policy_text is None:
        raise errors.RepositoryPolicyNotFoundException(name, ctx.registry_id)
    text, repo.policy_text = repo.policy_text, None
    return text


def put_registry_policy(ctx: Context, text: str) -> str:
    doc = validate(text, "registry")
    stored = pretty(doc)
    settings_store.put(ctx, "registry_policy", stored)
    return stored


def get_registry_policy(ctx: Context) -> str:
    text = settings_store.get(ctx, "registry_policy")
    if text is None:
        raise errors.RegistryPolicyNotFoundException(ctx.registry_id)
    return text


def delete_registry_policy(ctx: Context) -> str:
    text = get_registry_policy(ctx)
    settings_store.remove(ctx, "registry_policy")
    return text
