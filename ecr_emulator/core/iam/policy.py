"""IAM policy documents: the grammar, checked once, compiled into statements that match requests.

Three kinds share the grammar. Identity policies (from ``--iam-config``) name no principal and
need ``Resource``/``NotResource``. Repository and registry policies are resource-based: they
need ``Principal``/``NotPrincipal``, may only name ECR actions, and may leave ``Resource`` out
(a repository policy applies to its repository; a registry policy to its registry).

``parse(text, kind)`` caches compiled documents by their text, so a policy read from the
database on every request is parsed once per process; a cached entry can never be stale
because a changed policy is a different text.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ecr_emulator.core.iam import patterns
from ecr_emulator.core.iam.conditions import Clause, Keys, PolicyError, compile_block
from ecr_emulator.core.naming import Principal

VERSIONS = ("2012-10-17", "2008-10-17")
KINDS = ("identity", "repository", "registry")
_DOC_KEYS = {"Version", "Id", "Statement"}
_STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource",
                   "Condition"}
_PRINCIPAL_TYPES = {"AWS", "Service", "Federated", "CanonicalUser"}
_ACTION = re.compile(r"^[a-zA-Z0-9-]+:[a-zA-Z0-9*?]+$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_PRINCIPAL_ARN = re.compile(
    r"^arn:aws[a-z-]*:(iam::(?P<acct>[0-9]{12}):(?P<what>root|user/.+|role/.+)"
    r"|sts::(?P<sacct>[0-9]{12}):(assumed-role/[^/]+/.+|federated-user/.+))$"
)

DIRECT, ACCOUNT = "direct", "account"  # how a resource policy's Principal named the caller


@dataclass(frozen=True)
class Principals:
    """A compiled Principal element: who it names."""

    anyone: bool
    accounts: frozenset[str]
    arns: frozenset[str]

    def match(self, who: Principal) -> str | None:
        """DIRECT when the caller itself (or everyone) is named, ACCOUNT when only its account is."""
        if self.anyone or who.arn in self.arns or who.entity_arn in self.arns:
            return DIRECT
        if who.account_id in self.accounts:
            return ACCOUNT
        return None


@dataclass(frozen=True)
class Request:
    """What a statement is matched against."""

    principal: Principal
    action: str  # lower case, e.g. "ecr:batchgetimage"
    resource: str
    keys: Keys


@dataclass(frozen=True)
class Statement:
    sid: str | None
    allow: bool
    action_names: tuple[str, ...]
    actions: re.Pattern[str]
    not_action: bool
    resources: tuple[str, ...] | None  # None: the policy's own resource
    resource_match: re.Pattern[str] | None  # compiled when no pattern holds a variable
    not_resource: bool
    principals: Principals | None  # None in identity policies
    not_principal: bool
    conditions: tuple[Clause, ...]

    def acts_on(self, action: str) -> bool:
        """Whether the statement covers ``action`` (lower case)."""
        return (self.actions.fullmatch(action) is not None) != self.not_action

    def applies(self, request: Request) -> str | None:
        """For a statement that acts on the request's action: None when it does not apply (principal,
        resource or condition); else how the caller was named (DIRECT for identity policies)."""
        named = DIRECT
        if self.principals is not None:
            found = self.principals.match(request.principal)
            if self.not_principal:
                if found is not None:
                    return None
            elif found is None:
                return None
            else:
                named = found
        if self.resources is not None and self._resource_hit(request) == self.not_resource:
            return None
        for clause in self.conditions:
            if not clause.holds(request.keys):
                return None
        return named

    def _resource_hit(self, request: Request) -> bool:
        if self.resource_match is not None:
            return self.resource_match.fullmatch(request.resource) is not None
        for pattern in self.resources or ():
            try:
                if patterns.glob(pattern, lookup=request.keys.get).fullmatch(request.resource):
                    return True
            except patterns.MissingVariable:
                continue
        return False


@dataclass(frozen=True)
class Policy:
    kind: str
    statements: tuple[Statement, ...]
    _by_action: dict[str, tuple[tuple[Statement, ...], tuple[Statement, ...]]] = field(
        default_factory=dict, compare=False, repr=False)

    def for_action(self, action: str) -> tuple[tuple[Statement, ...], tuple[Statement, ...]]:
        """(Deny statements, Allow statements) that act on ``action`` (lower case); remembered per
        action, since a compiled policy never changes."""
        found = self._by_action.get(action)
        if found is None:
            acting = [st for st in self.statements if st.acts_on(action)]
            found = (tuple(st for st in acting if not st.allow), tuple(st for st in acting if st.allow))
            self._by_action[action] = found
        return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _strings(value: Any, where: str) -> list[str]:
    items = _as_list(value)
    if not items or not all(isinstance(v, str) and v for v in items):
        raise PolicyError(f"{where} must be a non-empty string or list of strings")
    return items


def _compile_actions(value: Any, kind: str, where: str) -> re.Pattern[str]:
    actions = _strings(value, where)
    for action in actions:
        if action != "*" and not _ACTION.match(action):
            raise PolicyError(f"{where}: '{action}' is not an action (service:Name)")
        if kind != "identity" and action != "*" and not action.lower().startswith("ecr:"):
            raise PolicyError(f"{where}: a {kind} policy may only name ECR actions, not '{action}'")
    return patterns.glob_any(tuple(actions), ignore_case=True)


def _check_resources(value: Any, where: str, variables: bool) -> tuple[str, ...]:
    resources = _strings(value, where)
    for resource in resources:
        if resource != "*" and (not resource.startswith("arn:") or len(resource.split(":", 5)) != 6):
            raise PolicyError(f"{where}: '{resource}' is not '*' or an ARN")
        if variables and (problem := patterns.check_variables(resource)):
            raise PolicyError(f"{where}: {problem}")
    return tuple(resources)


def _compile_principals(value: Any, where: str) -> Principals:
    if value == "*":
        return Principals(True, frozenset(), frozenset())
    if not isinstance(value, dict) or not value or not set(value) <= _PRINCIPAL_TYPES:
        raise PolicyError(f"{where} must be \"*\" or an object of {sorted(_PRINCIPAL_TYPES)}")
    anyone, accounts, arns = False, set(), set()
    for ptype, names in value.items():
        for name in _strings(names, f"{where}.{ptype}"):
            if ptype != "AWS":
                continue  # services and federated identities never call the emulator
            if name == "*":
                anyone = True
            elif _ACCOUNT.match(name):
                accounts.add(name)
            elif (m := _PRINCIPAL_ARN.match(name)) and "*" not in name:
                if m["what"] == "root":
                    accounts.add(m["acct"])
                else:
                    arns.add(name)
            else:
                raise PolicyError(f"{where}.AWS: '{name}' is not \"*\", an account id or a user, role or root ARN")
    return Principals(anyone, frozenset(accounts), frozenset(arns))


def _compile_statement(st: Any, kind: str, variables: bool, where: str) -> Statement:
    if not isinstance(st, dict):
        raise PolicyError(f"{where} must be an object")
    if unknown := set(st) - _STATEMENT_KEYS:
        raise PolicyError(f"{where}: unknown element(s) {sorted(unknown)}")
    if "Sid" in st and not isinstance(st["Sid"], str):
        raise PolicyError(f"{where}.Sid must be a string")
    if st.get("Effect") not in ("Allow", "Deny"):
        raise PolicyError(f"{where}.Effect must be \"Allow\" or \"Deny\"")
    if ("Action" in st) == ("NotAction" in st):
        raise PolicyError(f"{where} needs exactly one of Action and NotAction")
    if "Resource" in st and "NotResource" in st:
        raise PolicyError(f"{where} may not have both Resource and NotResource")
    has_principal = "Principal" in st or "NotPrincipal" in st
    if kind == "identity":
        if has_principal:
            raise PolicyError(f"{where}: an identity policy names no Principal")
        if "Resource" not in st and "NotResource" not in st:
            raise PolicyError(f"{where} needs Resource or NotResource")
    elif not has_principal or ("Principal" in st and "NotPrincipal" in st):
        raise PolicyError(f"{where} needs exactly one of Principal and NotPrincipal")
    action_key = "Action" if "Action" in st else "NotAction"
    resource_key = "Resource" if "Resource" in st else "NotResource" if "NotResource" in st else None
    principal_key = "Principal" if "Principal" in st else "NotPrincipal" if "NotPrincipal" in st else None
    resources = _check_resources(st[resource_key], f"{where}.{resource_key}", variables) if resource_key else None
    plain = resources is not None and not (variables and any(map(patterns.has_variables, resources)))
    return Statement(
        sid=st.get("Sid"),
        allow=st["Effect"] == "Allow",
        action_names=tuple(_as_list(st[action_key])),
        actions=_compile_actions(st[action_key], kind, f"{where}.{action_key}"),
        not_action=action_key == "NotAction",
        resources=resources,
        resource_match=patterns.glob_any(resources) if plain and resources is not None else None,
        not_resource=resource_key == "NotResource",
        principals=_compile_principals(st[principal_key], f"{where}.{principal_key}") if principal_key else None,
        not_principal=principal_key == "NotPrincipal",
        conditions=compile_block(st["Condition"], variables, f"{where}.Condition") if "Condition" in st else (),
    )


def compile_policy(doc: Any, kind: str) -> Policy:
    """Check ``doc`` (parsed JSON) against IAM's grammar for ``kind``; raises PolicyError."""
    if kind not in KINDS:
        raise ValueError(kind)
    if not isinstance(doc, dict):
        raise PolicyError("a policy document is a JSON object")
    if unknown := set(doc) - _DOC_KEYS:
        raise PolicyError(f"unknown top-level element(s) {sorted(unknown)}")
    version = doc.get("Version")
    if version is not None and version not in VERSIONS:
        raise PolicyError(f"Version must be one of {list(VERSIONS)}")
    if "Id" in doc and not isinstance(doc["Id"], str):
        raise PolicyError("Id must be a string")
    statements = doc.get("Statement")
    if not statements:
        raise PolicyError("Statement is required")
    variables = version == "2012-10-17"
    return Policy(kind, tuple(
        _compile_statement(st, kind, variables, f"Statement[{i}]") for i, st in enumerate(_as_list(statements))
    ))


def load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PolicyError(f"not valid JSON: {exc}") from exc


@functools.lru_cache(maxsize=1024)
def parse(text: str, kind: str) -> Policy:
    """A stored policy text, compiled (cached by text)."""
    return compile_policy(load_json(text), kind)

