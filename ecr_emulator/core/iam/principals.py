"""Declared principals (``serve --iam-config FILE``): access keys that act as IAM users and roles.

The file is JSON::

    {"principals": [
      {"accessKeyId": "AKIA...", "secretAccessKey": "...", "arn": "arn:aws:iam::111111111111:user/ci",
       "policies": [<identity policy documents>], "tags": {"team": "build"}},
      {"accessKeyId": "ASIA...", "secretAccessKey": "...", "sessionToken": "...",
       "arn": "arn:aws:iam::111111111111:role/deployer", "sessionName": "pipeline"}
    ]}

It is read and checked once at start-up; any fault names the file and the entry. A key that is
not declared keeps acting as the root of the account it maps to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecr_emulator.core.iam.conditions import PolicyError
from ecr_emulator.core.iam.policy import Policy, compile_policy
from ecr_emulator.core.naming import Principal

_NAME = r"[\w+=,.@-]"
_ARN = re.compile(
    rf"^arn:(?P<part>aws[a-z-]*):(?:iam::(?P<acct>[0-9]{{12}}):(?:(?P<root>root)"
    rf"|(?P<type>user|role)/(?P<path>(?:{_NAME}+/)*)(?P<name>{_NAME}{{1,64}}))"
    rf"|sts::(?P<sacct>[0-9]{{12}}):assumed-role/(?P<role>{_NAME}{{1,64}})/(?P<session>{_NAME}{{2,64}}))$",
    re.ASCII,
)
_SESSION = re.compile(rf"^{_NAME}{{2,64}}$", re.ASCII)
ACCESS_KEY = re.compile(r"^[A-Za-z0-9_]{16,128}$")
_PRINTABLE = re.compile(r"^[\x21-\x7e]+$")
_ENTRY_KEYS = {"accessKeyId", "secretAccessKey", "arn", "policies", "sessionToken", "sessionName", "tags"}
MAX_IDENTITY_POLICY_CHARS = 6144  # IAM's managed-policy size, whitespace not counted


class IamConfigError(ValueError):
    """The --iam-config file is unusable; the message names the file and the entry."""


def principal_for(arn: str, access_key_id: str, session_name: str | None = None) -> Principal | None:
    """The principal an IAM ARN names, or None when the ARN is not a root, user, role or role session."""
    m = _ARN.match(arn)
    if not m:
        return None
    part = m["part"]
    if m["sacct"]:  # a role session given directly
        role_arn = f"arn:{part}:iam::{m['sacct']}:role/{m['role']}"
        return Principal(m["sacct"], access_key_id, arn, role_arn, "AssumedRole")
    account = m["acct"]
    if m["root"]:
        return Principal(account, access_key_id, arn, arn, "Account")
    if m["type"] == "user":
        return Principal(account, access_key_id, arn, arn, "User")
    session = session_name or access_key_id
    return Principal(account, access_key_id, f"arn:{part}:sts::{account}:assumed-role/{m['name']}/{session}", arn,
                     "AssumedRole")


@dataclass(frozen=True)
class Declared:
    principal: Principal
    secret: str
    session_token: str | None
    policies: tuple[Policy, ...] | None  # None: the account root, not judged by identity policies
    tags: dict[str, str] = field(default_factory=dict)


class IamConfig:
    """Every declared principal, by access key."""

    def __init__(self, declared: list[Declared] | None = None) -> None:
        self._by_key = {d.principal.access_key_id: d for d in declared or []}

    def get(self, access_key_id: str) -> Declared | None:
        return self._by_key.get(access_key_id)

    def acting_as(self, entity_arn: str) -> Principal | None:
        """A declared principal whose IAM user or role is ``entity_arn`` (a role a service assumes)."""
        return next((d.principal for d in self._by_key.values() if d.principal.entity_arn == entity_arn), None)

    def _declared_as(self, principal: Principal) -> Declared | None:
        found = self._by_key.get(principal.access_key_id)
        return found if found is not None and found.principal.arn == principal.arn else None

    def identity_policies(self, principal: Principal) -> tuple[Policy, ...] | None:
        """The principal's identity policies; None for a root (judged by resource policies only).
        A non-root principal no longer declared (a token outlived a config change) has none."""
        found = self._declared_as(principal)
        if found is not None:
            return found.policies
        return None if principal.is_root else ()

    def tags(self, principal: Principal) -> dict[str, str]:
        found = self._declared_as(principal)
        return found.tags if found is not None else {}

    @classmethod
    def load(cls, path: str) -> IamConfig:
        if not path:
            return cls()
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise IamConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise IamConfigError(f"{path}: not valid JSON: {exc}") from exc
        if not isinstance(doc, dict) or set(doc) != {"principals"} or not isinstance(doc["principals"], list):
            raise IamConfigError(f'{path}: expected {{"principals": [...]}} and nothing else')
        declared: list[Declared] = []
        seen: set[str] = set()
        for i, entry in enumerate(doc["principals"]):
            label = f"principals[{i}]"
            if isinstance(entry, dict) and isinstance(entry.get("accessKeyId"), str):
                label += f" ({entry['accessKeyId']})"
            try:
                item = _entry(entry)
            except (IamConfigError, PolicyError) as exc:
                raise IamConfigError(f"{path}: {label}: {exc}") from exc
            key = item.principal.access_key_id
            if key in seen:
                raise IamConfigError(f"{path}: {label}: access key {key} is declared twice")
            seen.add(key)
            declared.append(item)
        return cls(declared)


def _text(entry: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = entry.get(name)
    if not isinstance(value, str) or not pattern.match(value):
        raise IamConfigError(f"{name} must be {what}")
    return value


def _optional_text(entry: dict[str, Any], name: str, pattern: re.Pattern[str], what: str) -> str | None:
    return None if entry.get(name) is None else _text(entry, name, pattern, what)


def _entry(entry: Any) -> Declared:
    if not isinstance(entry, dict):
        raise IamConfigError("each principal is a JSON object")
    if unknown := set(entry) - _ENTRY_KEYS:
        raise IamConfigError(f"unknown field(s) {sorted(unknown)}; expected {sorted(_ENTRY_KEYS)}")
    key = _text(entry, "accessKeyId", ACCESS_KEY, "16-128 letters, digits or underscores (like AKIA...)")
    secret = _text(entry, "secretAccessKey", _PRINTABLE, "printable ASCII without spaces")
    token = _optional_text(entry, "sessionToken", _PRINTABLE, "printable ASCII without spaces")
    session = _optional_text(entry, "sessionName", _SESSION, "2-64 characters of [A-Za-z0-9+=,.@_-]")
    arn = entry.get("arn")
    principal = principal_for(arn, key, session) if isinstance(arn, str) else None
    if principal is None or not isinstance(arn, str):
        raise IamConfigError(
            "arn must be arn:aws:iam::<account>:user/<name>, ...:role/<name>, ...:root or "
            "arn:aws:sts::<account>:assumed-role/<role>/<session>"
        )
    if session is not None and not (principal.kind == "AssumedRole" and ":role/" in arn):
        raise IamConfigError("sessionName goes with a role ARN only")
    tags = entry.get("tags", {})
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 128 and len(v) <= 256 for k, v in tags.items()
    ):
        raise IamConfigError("tags must map tag keys (1-128 characters) to string values (up to 256)")
    raw_policies = entry.get("policies", [])
    if not isinstance(raw_policies, list):
        raise IamConfigError("policies must be a list of identity policy documents")
    if principal.is_root and raw_policies:
        raise IamConfigError("the account root has no identity policies; declare a user or a role instead")
    policies = []
    for j, doc in enumerate(raw_policies):
        if len("".join(json.dumps(doc).split())) > MAX_IDENTITY_POLICY_CHARS:
            raise IamConfigError(f"policies[{j}]: larger than IAM's {MAX_IDENTITY_POLICY_CHARS} characters")
        try:
            policies.append(compile_policy(doc, "identity"))
        except PolicyError as exc:
            raise IamConfigError(f"policies[{j}]: {exc}") from exc
    return Declared(principal, secret, token, None if principal.is_root else tuple(policies), dict(tags))
