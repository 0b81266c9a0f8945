"""Policy conditions: the condition keys ECR requests carry, and IAM's condition operators.

A ``Condition`` block is ``{operator: {key: value | [values]}}``. Every operator and every key
must hold (AND); within one key any value may match (OR); a negated operator (``StringNotEquals``,
``NotIpAddress``, ``ArnNotLike``, ...) holds when no value matches. A key the request lacks makes
a positive operator false and a negated one true; ``...IfExists`` makes it true; ``Null`` tests
for presence. ``ForAnyValue:`` / ``ForAllValues:`` compare each value of a multi-valued key (an
absent key: ForAnyValue false, ForAllValues true).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from ecr_emulator.core.iam import patterns


class PolicyError(ValueError):
    """A policy document breaks IAM's grammar; the message says where and why."""


class Keys(Protocol):
    """The request context: condition key (lower case) -> value, list of values, or None."""

    def get(self, key: str) -> str | list[str] | None: ...


# Global keys IAM defines (lower case). The emulator fills those in KEYS_PROVIDED; the others are
# valid in a policy but never present in an emulated request (what a request outside a VPC, an
# organization or a service chain looks like on AWS).
GLOBAL_KEYS = frozenset(k.lower() for k in (
    "aws:CalledVia", "aws:CalledViaFirst", "aws:CalledViaLast", "aws:CurrentTime", "aws:EpochTime",
    "aws:FederatedProvider", "aws:MultiFactorAuthAge", "aws:MultiFactorAuthPresent", "aws:PrincipalAccount",
    "aws:PrincipalArn", "aws:PrincipalIsAWSService", "aws:PrincipalOrgID", "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceName", "aws:PrincipalServiceNamesList", "aws:PrincipalType", "aws:Referer",
    "aws:RequestedRegion", "aws:ResourceAccount", "aws:ResourceOrgID", "aws:ResourceOrgPaths",
    "aws:SecureTransport", "aws:SourceAccount", "aws:SourceArn", "aws:SourceIdentity", "aws:SourceIp",
    "aws:SourceOrgID", "aws:SourceOrgPaths", "aws:SourceVpc", "aws:SourceVpce", "aws:SourceVpcArn",
    "aws:TagKeys", "aws:TokenIssueTime", "aws:UserAgent", "aws:userid", "aws:username", "aws:ViaAWSService",
    "aws:VpcSourceIp", "aws:Ec2InstanceSourceVpc", "aws:Ec2InstanceSourcePrivateIPv4",
))
KEY_PREFIXES = ("aws:requesttag/", "aws:resourcetag/", "aws:principaltag/", "ecr:resourcetag/")
_KEY_SHAPE = re.compile(r"^[a-z0-9-]+:[^\s]+$")

# kind of comparison, whether the operator is negated
_OPERATORS: dict[str, tuple[str, bool]] = {
    "StringEquals": ("str", False), "StringNotEquals": ("str", True),
    "StringEqualsIgnoreCase": ("str_ci", False), "StringNotEqualsIgnoreCase": ("str_ci", True),
    "StringLike": ("like", False), "StringNotLike": ("like", True),
    "NumericEquals": ("num_eq", False), "NumericNotEquals": ("num_eq", True),
    "NumericLessThan": ("num_lt", False), "NumericLessThanEquals": ("num_le", False),
    "NumericGreaterThan": ("num_gt", False), "NumericGreaterThanEquals": ("num_ge", False),
    "DateEquals": ("date_eq", False), "DateNotEquals": ("date_eq", True),
    "DateLessThan": ("date_lt", False), "DateLessThanEquals": ("date_le", False),
    "DateGreaterThan": ("date_gt", False), "DateGreaterThanEquals": ("date_ge", False),
    "Bool": ("bool", False), "BinaryEquals": ("str", False),
    "IpAddress": ("ip", False), "NotIpAddress": ("ip", True),
    "ArnEquals": ("arn", False), "ArnLike": ("arn", False), "ArnNotEquals": ("arn", True),
    "ArnNotLike": ("arn", True),
    "Null": ("null", False),
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "eq": lambda a, b: a == b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}
_VARIABLE_KINDS = ("str", "str_ci", "like", "arn")


def check_key(key: str) -> str | None:
    """Why ``key`` is not a condition key a policy may name, or None."""
    low = key.lower()
    if not _KEY_SHAPE.match(low):
        return f"'{key}' is not a condition key"
    if low.startswith(KEY_PREFIXES):
        return None if low.split("/", 1)[1] else f"'{key}' names no tag key"
    service = low.split(":", 1)[0]
    if service == "aws" and low not in GLOBAL_KEYS:
        return f"unknown global condition key '{key}'"
    if service == "ecr":
        return f"unknown ECR condition key '{key}' (ECR has ecr:ResourceTag/<key>)"
    return None


@functools.lru_cache(maxsize=1024)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@functools.lru_cache(maxsize=1024)
def parse_date(value: str) -> float:
    """ISO 8601 (date, date-time, with zone or UTC) or epoch seconds -> epoch seconds."""
    text = value.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _parse_value(kind: str, raw: str) -> Any:
    if kind == "str_ci":
        return raw.casefold()
    if kind == "like":
        return patterns.glob(raw)
    if kind.startswith("num_"):
        number = float(raw)
        if math.isnan(number):
            raise ValueError(raw)
        return number
    if kind.startswith("date_"):
        return parse_date(raw)
    if kind in ("bool", "null"):
        if raw.lower() not in ("true", "false"):
            raise ValueError(raw)
        return raw.lower() == "true"
    if kind == "ip":
        return ipaddress.ip_network(raw, strict=False)
    if kind == "arn":
        return _arn_pattern(raw, None)
    return raw


def _parse_checked(kind: str, name: str, raw: str, where: str) -> Any:
    try:
        return _parse_value(kind, raw)
    except ValueError as exc:
        raise PolicyError(f"{where}: '{raw}' is not a valid {name} value") from exc


def _arn_pattern(raw: str, lookup: patterns.Lookup | None) -> tuple[re.Pattern[str], ...]:
    parts = raw.split(":", 5)
    if len(parts) != 6:  # not ARN-shaped: only ever equal to itself
        return (patterns.glob(raw, lookup=lookup),)
    return tuple(patterns.glob(p, lookup=lookup) for p in parts)


def _as_text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise PolicyError(f"{where}: condition values must be strings, numbers or booleans")


@dataclass(frozen=True)
class Clause:
    """One (operator, key, values) test of a Condition block."""

    operator: str
    kind: str
    negated: bool
    set_op: str | None  # "any" | "all" | None
    if_exists: bool
    key: str  # lower case
    values: tuple[Any, ...]  # parsed for ``kind``; raw text when ``variables``
    variables: bool

    def holds(self, keys: Keys) -> bool:
        found = keys.get(self.key)
        absent = found is None or found == []
        if self.kind == "null":
            return absent in self.values
        if absent:
            if self.if_exists or self.set_op == "all":
                return True
            if self.set_op == "any":
                return False
            return self.negated
        items = found if isinstance(found, list) else [found]
        values = self._resolved(keys) if self.variables else self.values
        if self.set_op is not None:
            test = any if self.set_op == "any" else all
            return test(self._matches(item, values) != self.negated for item in items)
        hit = any(self._matches(item, values) for item in items)
        return hit != self.negated

    def _resolved(self, keys: Keys) -> tuple[Any, ...]:
        out = []
        for raw in self.values:
            try:
                if self.kind == "like":
                    out.append(patterns.glob(raw, lookup=keys.get))
                elif self.kind == "arn":
                    out.append(_arn_pattern(raw, keys.get))
                else:
                    text = patterns.substitute(raw, keys.get)
                    out.append(text.casefold() if self.kind == "str_ci" else text)
            except patterns.MissingVariable:
                continue  # that value matches nothing
        return tuple(out)

    def _matches(self, item: str, values: tuple[Any, ...]) -> bool:
        kind = self.kind
        try:
            if kind == "str":
                return item in values
            if kind == "str_ci":
                return item.casefold() in values
            if kind == "like":
                return any(v.fullmatch(item) for v in values)
            if kind == "bool":
                return (item.lower() == "true") in values
            if kind.startswith("num_"):
                number, op = float(item), _COMPARE[kind[4:]]
                return any(op(number, v) for v in values)
            if kind.startswith("date_"):
                moment, op = parse_date(item), _COMPARE[kind[5:]]
                return any(op(moment, v) for v in values)
            if kind == "ip":
                address = _address(item)
                return any(address.version == v.version and address in v for v in values)
            if kind == "arn":
                parts = item.split(":", 5)
                return any(len(v) == len(parts) and all(p.fullmatch(s) for p, s in zip(v, parts, strict=True))
                           or len(v) == 1 and v[0].fullmatch(item) for v in values)
        except ValueError:  # a context value the operator cannot read matches nothing
            return False
        return False


def compile_block(block: Any, variables_allowed: bool, where: str) -> tuple[Clause, ...]:
    if not isinstance(block, dict) or not block:
        raise PolicyError(f"{where}: Condition must be a non-empty object")
    clauses = []
    for operator, entries in block.items():
        clauses.extend(_compile_operator(operator, entries, variables_allowed, f"{where}.{operator}"))
    return tuple(clauses)


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    set_op = None
    name = operator
    for prefix, op in (("ForAnyValue:", "any"), ("ForAllValues:", "all")):
        if name.startswith(prefix):
            set_op, name = op, name[len(prefix):]
    if_exists = name.endswith("IfExists") and name != "IfExists"
    if if_exists:
        name = name[: -len("IfExists")]
    return set_op, name, if_exists


def _compile_operator(operator: Any, entries: Any, variables_allowed: bool, where: str) -> list[Clause]:
    if not isinstance(operator, str):
        raise PolicyError(f"{where}: condition operators are strings")
    set_op, name, if_exists = _split_operator(operator)
    if name not in _OPERATORS or (name == "Null" and (if_exists or set_op)):
        raise PolicyError(f"{where}: unknown condition operator '{operator}'")
    kind, negated = _OPERATORS[name]
    if not isinstance(entries, dict) or not entries:
        raise PolicyError(f"{where}: an operator maps condition keys to values")
    clauses = []
    for key, raw in entries.items():
        if not isinstance(key, str) or (problem := check_key(key)):
            raise PolicyError(f"{where}: {problem if isinstance(key, str) else 'keys are strings'}")
        raw_values = raw if isinstance(raw, list) else [raw]
        if not raw_values:
            raise PolicyError(f"{where}.{key}: at least one value is required")
        texts = [_as_text(v, f"{where}.{key}") for v in raw_values]
        uses_variables = variables_allowed and kind in _VARIABLE_KINDS and any(map(patterns.has_variables, texts))
        if uses_variables:
            for text in texts:
                if problem := patterns.check_variables(text):
                    raise PolicyError(f"{where}.{key}: {problem}")
            values = tuple(texts)
        else:
            values = tuple(_parse_checked(kind, name, t, f"{where}.{key}") for t in texts)
        clauses.append(Clause(operator, kind, negated, set_op, if_exists, key.lower(), values, uses_variables))
    return clauses
