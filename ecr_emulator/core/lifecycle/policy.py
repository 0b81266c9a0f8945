"""Lifecycle policy documents: ECR's grammar (a JSON Schema) plus the rules between rules.

Errors carry ECR's wording: ``Invalid parameter at 'LifecyclePolicyText' failed to satisfy
constraint: 'Lifecycle policy validation failure: <detail>'``, where the detail of a grammar
error reads like the JSON-schema validator ECR uses.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

from ecr_emulator.core import errors

DAY = 86400.0
MAX_WILDCARDS = 4
MIN_ARCHIVE_DAYS = 90

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rules"],
    "additionalProperties": False,
    "properties": {
        "rules": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"$ref": "#/definitions/rule"}},
    },
    "definitions": {
        "rule": {
            "type": "object",
            "required": ["rulePriority", "selection", "action"],
            "additionalProperties": False,
            "properties": {
                "rulePriority": {"type": "integer", "minimum": 1},
                "description": {"type": "string"},
                "selection": {"$ref": "#/definitions/selection"},
                "action": {"$ref": "#/definitions/action"},
            },
        },
        "selection": {
            "type": "object",
            "required": ["tagStatus", "countType", "countNumber"],
            "additionalProperties": False,
            "properties": {
                "tagStatus": {"enum": ["any", "tagged", "untagged"]},
                "tagPrefixList": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                "tagPatternList": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
                "storageClass": {"enum": ["archive", "standard"]},
                "countType": {
                    "enum": ["imageCountMoreThan", "sinceImagePulled", "sinceImagePushed", "sinceImageTransitioned"]
                },
                "countUnit": {"enum": ["days"]},
                "countNumber": {"type": "integer", "minimum": 1},
            },
        },
        "action": {
            "type": "object",
            "required": ["type"],
            "additionalProperties": False,
            "properties": {
                "type": {"enum": ["expire", "transition"]},
                "targetStorageClass": {"enum": ["archive"]},
            },
        },
    },
}
@functools.cache
def _validator() -> Any:
    import jsonschema  # loaded with the first policy, not at start-up

    return jsonschema.Draft7Validator(SCHEMA)


@dataclass(frozen=True)
class Rule:
    priority: int
    tag_status: str  # tagged | untagged | any
    prefixes: tuple[str, ...]
    patterns: tuple[str, ...]
    storage_class: str  # standard | archive
    count_type: str
    count_number: int
    action: str  # expire | transition
    target: str | None  # archive, for transitions

    @property
    def age_seconds(self) -> float:
        return self.count_number * DAY


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]  # sorted by priority, 1 first
    text: str  # compact re-serialisation, as ECR stores and returns it


def _failure(detail: str) -> errors.InvalidParameterException:
    return errors.InvalidParameterException.constraint(
        "LifecyclePolicyText", f"Lifecycle policy validation failure: {detail}"
    )


def _json_list(values: Any) -> str:
    return "[" + ",".join(json.dumps(v) for v in values) + "]"


def _schema_detail(err: jsonschema.ValidationError) -> str:
    """Word a jsonschema error the way ECR's validator does."""
    kind, instance = err.validator, err.instance
    if kind == "required":
        missing = [p for p in err.validator_value if isinstance(instance, dict) and p not in instance]
        return f"object has missing required properties ({_json_list(missing)})"
    if kind == "additionalProperties":
        allowed = set(err.schema.get("properties", {}))
        extra = sorted(k for k in instance if k not in allowed)
        return f"object instance has properties which are not allowed by the schema: ({_json_list(extra)})"
    if kind == "enum":
        return (f"instance value ({instance}) not found in enum :(possible values: "
                f"{_json_list(err.validator_value)})")
    if kind == "minimum":
        return f"numeric instance is lower than the required minimum (minimum: {err.validator_value}, found: {instance})"
    if kind == "type":
        found = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array",
                 dict: "object", type(None): "null"}.get(type(instance), "unknown")
        return f"instance type ({found}) does not match any allowed primitive type (allowed: [\"{err.validator_value}\"])"
    if kind == "minItems":
        return (f"array is too short: must have at least {err.validator_value} elements but instance has "
                f"{len(instance)} elements")
    if kind == "maxItems":
        return (f"array is too long: must have at most {err.validator_value} elements but instance has "
                f"{len(instance)} elements")
    if kind == "minLength":
        return f"string \"{instance}\" is too short (length: {len(instance)}, required minimum: {err.validator_value})"
    return err.message


def _check_rule(raw: dict[str, Any]) -> Rule:
    sel, act = raw["selection"], raw["action"]
    priority = raw["rulePriority"]
    status, count_type = sel["tagStatus"], sel["countType"]
    prefixes, patterns = sel.get("tagPrefixList"), sel.get("tagPatternList")
    storage = sel.get("storageClass", "standard")
    where = f"rule with rulePriority {priority}"
    if status == "tagged":
        if prefixes is None and patterns is None:
            raise _failure(f"{where}: tagPrefixList or tagPatternList is required when tagStatus is 'tagged'")
        if prefixes is not None and patterns is not None:
            raise _failure(f"{where}: tagPrefixList and tagPatternList cannot both be specified")
    elif prefixes is not None or patterns is not None:
        raise _failure(f"{where}: tagPrefixList and tagPatternList can only be used when tagStatus is 'tagged'")
    for pattern in patterns or []:
        if pattern.count("*") > MAX_WILDCARDS:
            raise _failure(f"{where}: tagPatternList entry '{pattern}' has more than {MAX_WILDCARDS} wildcards (*)")
    if count_type == "imageCountMoreThan":
        if "countUnit" in sel:
            raise _failure(f"{where}: countUnit cannot be used with countType 'imageCountMoreThan'")
    elif "countUnit" not in sel:
        raise _failure(f"{where}: countUnit is required with countType '{count_type}'")
    if count_type == "sinceImageTransitioned":
        if sel.get("storageClass") != "archive":
            raise _failure(f"{where}: countType 'sinceImageTransitioned' requires storageClass 'archive'")
        if act["type"] != "expire":
            raise _failure(f"{where}: countType 'sinceImageTransitioned' can only be used with action 'expire'")
        if sel["countNumber"] < MIN_ARCHIVE_DAYS:
            raise _failure(f"{where}: archived images must be kept at least {MIN_ARCHIVE_DAYS} days, "
                           f"countNumber {sel['countNumber']} is too small")
    elif storage != "standard":
        raise _failure(f"{where}: storageClass 'archive' can only be used with countType 'sinceImageTransitioned'")
    if count_type == "sinceImagePulled" and act["type"] != "transition":
        raise _failure(f"{where}: countType 'sinceImagePulled' can only be used with action 'transition'")
    if act["type"] == "transition":
        if act.get("targetStorageClass") != "archive":
            raise _failure(f"{where}: action 'transition' requires targetStorageClass 'archive'")
    elif "targetStorageClass" in act:
        raise _failure(f"{where}: targetStorageClass can only be used with action 'transition'")
    return Rule(
        priority=priority,
        tag_status=status,
        prefixes=tuple(prefixes or ()),
        patterns=tuple(patterns or ()),
        storage_class=storage,
        count_type=count_type,
        count_number=sel["countNumber"],
        action=act["type"],
        target=act.get("targetStorageClass"),
    )


def _check_across(rules: list[Rule]) -> None:
    seen: dict[int, Rule] = {}
    for rule in rules:
        if rule.priority in seen:
            raise _failure(f"rulePriority must be unique, {rule.priority} is used by more than one rule")
        seen[rule.priority] = rule
    ordered = sorted(rules, key=lambda r: r.priority)
    for rule in ordered[:-1]:
        if rule.tag_status == "any":
            raise _failure("the rule with tagStatus 'any' must have the highest rulePriority value")
    untagged: set[str] = set()
    prefixes: dict[str, set[str]] = {}
    for rule in ordered:
        if rule.tag_status == "untagged":
            if rule.storage_class in untagged:
                raise _failure(f"only one rule may select untagged images of storageClass '{rule.storage_class}'")
            untagged.add(rule.storage_class)
        used = prefixes.setdefault(rule.storage_class, set())
        repeated = used & set(rule.prefixes)
        if repeated:
            raise _failure(f"tag prefix '{sorted(repeated)[0]}' is used by more than one rule of storageClass "
                           f"'{rule.storage_class}'")
        used |= set(rule.prefixes)


def parse(text: str) -> Policy:
    """Validate a policy document; raises InvalidParameterException with ECR's wording."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise _failure("Could not map policyString into LifecyclePolicy.") from exc
    from jsonschema.exceptions import best_match

    err = best_match(_validator().iter_errors(doc))  # the shallowest error
    if err is not None:
        raise _failure(_schema_detail(err))
    rules = [_check_rule(r) for r in doc["rules"]]
    _check_across(rules)
    return Policy(tuple(sorted(rules, key=lambda r: r.priority)),
                  json.dumps(doc, separators=(",", ":"), ensure_ascii=False))

