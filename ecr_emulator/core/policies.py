"""Repository and registry permission policies: validated, stored, and returned the way ECR
returns them (re-serialised by its JSON library's pretty printer).

Documents are checked against IAM's grammar (``core/iam/policy.py``) and enforced by
``core/access.py`` on every request of both planes.
"""

from __future__ import annotations

import json
from typing import Any

from ecr_emulator.core import access, errors, repositories, settings_store
from ecr_emulator.core.context import Context
from ecr_emulator.core.iam.conditions import PolicyError
from ecr_emulator.core.iam.evaluate import V1_REGISTRY_ACTIONS
from ecr_emulator.core.iam.policy import Policy, compile_policy, load_json


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


def validate(text: str, kind: str) -> tuple[dict[str, Any], Policy]:
    """Parse and check a policy document against IAM's grammar; ``kind`` is "repository" or "registry"."""
    try:
        doc = load_json(text)
        return doc, compile_policy(doc, kind)
    except PolicyError as exc:
        raise errors.InvalidParameterException.constraint("PolicyText", f"Invalid {kind} policy provided") from exc


def set_repository_policy(ctx: Context, name: str, text: str, force: bool = False) -> str:
    doc, policy = validate(text, "repository")
    repo = repositories.get(ctx, name, for_update=True)
    if not force and access.would_lock_out(ctx, name, policy):
        raise errors.InvalidParameterException.constraint(
            "PolicyText",
            "The repository policy would prevent you from setting the repository policy in the future. "
            "Set force to true to apply it anyway",
        )
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
    doc, policy = validate(text, "registry")
    if settings_store.account_setting(ctx, "REGISTRY_POLICY_SCOPE") == "V1" and not all(
        not st.not_action and {a.lower() for a in st.action_names} <= V1_REGISTRY_ACTIONS for st in policy.statements
    ):  # V1 registry policies speak only for replication, pull-through import and repository creation
        raise errors.InvalidParameterException.constraint("PolicyText", "Invalid registry policy provided")
    stored = pretty(doc)
    settings_store.put(ctx, access.REGISTRY_POLICY, stored)
    return stored


def get_registry_policy(ctx: Context) -> str:
    text = settings_store.get(ctx, access.REGISTRY_POLICY)
    if text is None:
        raise errors.RegistryPolicyNotFoundException(ctx.registry_id)
    return text


def delete_registry_policy(ctx: Context) -> str:
    text = get_registry_policy(ctx)
    settings_store.remove(ctx, access.REGISTRY_POLICY)
    return text
