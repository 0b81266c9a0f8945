"""Registry scanning configuration and what it means for each repository (ECR-BEHAVIOUR 8.2).

The registry document (scan type + up to two rules of wildcard filters) lives in the settings
store. A filter WITHOUT ``*`` matches any repository whose name contains it; WITH ``*`` it must
match the whole name, ``*`` standing for any run of characters. BASIC offers scan on push (other
repositories scan manually) and honours the deprecated repository-level ``scanOnPush`` too;
ENHANCED offers scan on push and continuous scanning, continuous winning when both match, and
leaves repositories that match nothing unscanned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ecr_emulator.core import errors, settings_store
from ecr_emulator.core.context import Context
from ecr_emulator.core.naming import wildcard_regex
from ecr_emulator.storage.models import Repository

SETTING = "scanning"
DEFAULT: dict[str, Any] = {"scanType": "BASIC", "rules": []}
FREQUENCIES = {"BASIC": ("SCAN_ON_PUSH", "MANUAL"), "ENHANCED": ("SCAN_ON_PUSH", "CONTINUOUS_SCAN")}
# ENHANCED without rules: Inspector scans every repository continuously (ECR User Guide).
ENHANCED_DEFAULT_RULES = [
    {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}
]


def filter_matches(pattern: str, repository_name: str) -> bool:
    if "*" not in pattern:
        return pattern in repository_name
    return wildcard_regex(pattern).fullmatch(repository_name) is not None


def registry_configuration(ctx: Context) -> dict[str, Any]:
    """The registry's document, read once per request (DescribeImages asks for every image)."""
    if SETTING not in ctx.memo:
        stored = settings_store.get(ctx, SETTING)
        ctx.memo[SETTING] = stored if stored is not None else dict(DEFAULT, rules=[])
    return ctx.memo[SETTING]


def scan_type(ctx: Context) -> str:
    return registry_configuration(ctx)["scanType"]


def put_registry_configuration(ctx: Context, scan_type_value: str | None, rules: list[dict[str, Any]] | None) -> dict:
    kind = scan_type_value or "BASIC"
    if rules is None and kind == "ENHANCED":
        rules = ENHANCED_DEFAULT_RULES
    checked = []
    seen: set[str] = set()
    for rule in rules or []:
        frequency = rule["scanFrequency"]
        if frequency not in FREQUENCIES[kind]:
            raise errors.ValidationException(
                f"Scan frequency {frequency} is not supported for scan type {kind}. Supported scan "
                f"frequencies: {', '.join(FREQUENCIES[kind])}"
            )
        if frequency in seen:
            raise errors.ValidationException(
                f"Only one rule with scan frequency {frequency} is allowed in the registry scanning configuration"
            )
        seen.add(frequency)
        filters = [{"filter": f["filter"], "filterType": f["filterType"]} for f in rule["repositoryFilters"]]
        checked.append({"scanFrequency": frequency, "repositoryFilters": filters})
    document = {"scanType": kind, "rules": checked}
    settings_store.put(ctx, SETTING, document)
    ctx.memo[SETTING] = document
    return document


@dataclass
class Effective:
    """How one repository is scanned, as BatchGetRepositoryScanningConfiguration reports it."""

    frequency: str  # SCAN_ON_PUSH | CONTINUOUS_SCAN | MANUAL
    applied: list[dict[str, str]] = field(default_factory=list)
    scan_type: str = "BASIC"

    @property
    def scans_on_push(self) -> bool:
        return self.frequency in ("SCAN_ON_PUSH", "CONTINUOUS_SCAN")


def effective(ctx: Context, repo: Repository, config: dict[str, Any] | None = None) -> Effective:
    config = config if config is not None else registry_configuration(ctx)
    kind = config["scanType"]
    matched: dict[str, list[dict[str, str]]] = {}
    for rule in config.get("rules", []):
        hits = [f for f in rule["repositoryFilters"] if filter_matches(f["filter"], repo.name)]
        if hits:
            matched[rule["scanFrequency"]] = hits
    for frequency in ("CONTINUOUS_SCAN", "SCAN_ON_PUSH", "MANUAL"):
        if frequency in matched and frequency in FREQUENCIES[kind]:
            return Effective(frequency, matched[frequency], kind)
    if kind == "BASIC" and repo.scan_on_push:
        return Effective("SCAN_ON_PUSH", [], kind)
    return Effective("MANUAL", [], kind)
