"""Names, ARNs, URIs and host names, derived the way ECR derives them."""

from __future__ import annotations

import re
from dataclasses import dataclass

REPOSITORY_NAME = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
IMAGE_TAG = re.compile(r"[a-zA-Z0-9-_.]+")
IMAGE_TAG_PATTERN_TEXT = "[a-zA-Z0-9-_.]+"
DIGEST = re.compile(r"[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+")
REGISTRY_HOST = re.compile(r"^(?P<account>[0-9]{12})\.dkr[.-]ecr[.-](?P<region>[a-z0-9-]+)\.")
REPOSITORY_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):ecr:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):repository/(?P<name>.+)$"
)


@dataclass(frozen=True)
class Scope:
    """One registry: an (account, region) pair. Every row belongs to exactly one."""

    account_id: str
    region: str


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, the access key, and the IAM identity behind it.

    ``arn`` is the caller as IAM names it in messages (for a role, the session:
    ``arn:aws:sts::<acct>:assumed-role/<role>/<session>``); ``entity_arn`` is the IAM user or role
    itself (``aws:PrincipalArn``); ``kind`` is ``aws:PrincipalType`` (``Account`` for the root,
    ``User``, ``AssumedRole``). Given only an account and a key, it is that account's root, which
    is what every access key not declared with ``--iam-config`` acts as.
    """

    account_id: str
    access_key_id: str
    arn: str = ""
    entity_arn: str = ""
    kind: str = "Account"

    def __post_init__(self) -> None:
        if not self.arn:
            object.__setattr__(self, "arn", f"arn:aws:iam::{self.account_id}:root")
        if not self.entity_arn:
            object.__setattr__(self, "entity_arn", self.arn)

    @property
    def is_root(self) -> bool:
        return self.kind == "Account"

    @property
    def username(self) -> str | None:
        """``aws:username``: an IAM user's name (users only)."""
        return self.entity_arn.rsplit("/", 1)[-1] if self.kind == "User" else None


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def repository_arn(scope: Scope, name: str) -> str:
    return f"arn:{partition_for(scope.region)}:ecr:{scope.region}:{scope.account_id}:repository/{name}"


def parse_repository_arn(arn: str) -> tuple[Scope, str] | None:
    m = REPOSITORY_ARN.match(arn)
    if not m:
        return None
    return Scope(m["account"], m["region"]), m["name"]


def is_valid_repository_name(name: str) -> bool:
    return 2 <= len(name) <= 256 and REPOSITORY_NAME.fullmatch(name) is not None


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """ECR wildcard (``*`` = any run of characters) matching the whole string."""
    return re.compile("".join(".*" if ch == "*" else re.escape(ch) for ch in pattern), re.DOTALL)


class RegistryHosts:
    """Host names of the registry endpoint, per (account, region).

    The configured host (default ``localhost:<registry port>``) names the default registry.
    A registry given a port of its own (``--registry-port-map``) is ``<host name>:<its port>``,
    which every stock client resolves. Any other registry is ``<account>.dkr.ecr.<region>.<host>``,
    the shape ECR uses. The registry listener parses both back from the Host header. A host
    containing ``{account}``/``{region}`` is a template applied to every other registry.
    """

    def __init__(self, host: str, default: Scope, scheme: str = "http",
                 ports: dict[Scope, int] | None = None) -> None:
        self.host = host
        self.default = default
        self.scheme = scheme
        self.ports = dict(ports or {})
        self._by_port = {str(port): scope for scope, port in self.ports.items()}

    def host_for(self, scope: Scope) -> str:
        templated = "{account}" in self.host or "{region}" in self.host
        host = self.host.format(account=scope.account_id, region=scope.region) if templated else self.host
        if scope in self.ports:
            name, sep, port = host.rpartition(":")
            return f"{name if sep and port.isdigit() else host}:{self.ports[scope]}"
        if templated or scope == self.default:
            return host
        return f"{scope.account_id}.dkr.ecr.{scope.region}.{self.host}"

    def repository_uri(self, scope: Scope, name: str) -> str:
        return f"{self.host_for(scope)}/{name}"

    def proxy_endpoint(self, scope: Scope) -> str:
        return f"{self.scheme}://{self.host_for(scope)}"

    def scope_from_host(self, host_header: str | None) -> Scope:
        """The registry a request addresses: from an ECR-shaped Host, a port of its own, else the default."""
        if host_header:
            m = REGISTRY_HOST.match(host_header)
            if m:
                return Scope(m["account"], m["region"])
            _, sep, port = host_header.rpartition(":")
            if sep and port in self._by_port:
                return self._by_port[port]
        return self.default
