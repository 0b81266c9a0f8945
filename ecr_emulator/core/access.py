"""Authorization, the one seam both planes call inside the request's transaction.

The API asks for ``ecr:<Operation>``, the registry for the action its route carries; both name
the repository (or ``*`` for every repository, or nothing for registry-level actions). This module
loads what the decision needs in one SQL statement (the repository policy, the registry policy and
``REGISTRY_POLICY_SCOPE``), the principal's identity policies from ``--iam-config``, builds the
request's condition keys (lazily: repository tags are read only when a policy asks for them), and
runs the pure evaluator (``core/iam/evaluate.py``). A denial raises ``AccessDeniedException`` in
IAM's words, before the request has changed anything.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, literal, select

from ecr_emulator.core import clock, errors, repositories, settings_store
from ecr_emulator.core.context import Context
from ecr_emulator.core.iam import evaluate
from ecr_emulator.core.iam.conditions import PolicyError
from ecr_emulator.core.iam.policy import Policy, parse
from ecr_emulator.core.naming import Principal, Scope, partition_for, repository_arn
from ecr_emulator.storage.models import Repository, ResourceTag
from ecr_emulator.storage.prepared import Prepared

log = logging.getLogger(__name__)

EVERY_REPOSITORY = "*"
REGISTRY_POLICY = "registry_policy"  # the registry_settings row PutRegistryPolicy writes
SCOPE_SETTING = "account:REGISTRY_POLICY_SCOPE"
_ORIGIN_MEMO = "access:origin"


@dataclass(frozen=True)
class Need:
    """One permission a request needs."""

    action: str  # "ecr:BatchGetImage"
    repository: str | None  # a name, EVERY_REPOSITORY, or None for a registry-level action
    request_tags: tuple[tuple[str, str], ...] = ()  # aws:RequestTag/<key> (CreateRepository, TagResource)
    tag_keys: tuple[str, ...] | None = None  # aws:TagKeys


@dataclass(frozen=True)
class Origin:
    """Facts about the connection a request arrived on (condition keys)."""

    source_ip: str | None = None
    secure: bool = False
    user_agent: str | None = None

    @classmethod
    def of(cls, environ: Mapping[str, Any]) -> Origin:
        """From a WSGI environ: the TCP peer, the scheme the server saw, the User-Agent."""
        return cls(environ.get("REMOTE_ADDR"), environ.get("wsgi.url_scheme") == "https",
                   environ.get("HTTP_USER_AGENT"))


def resource_of(scope: Scope, repository: str | None) -> str:
    return "*" if repository is None else repository_arn(scope, repository)


# Everything a decision reads from the database, in one statement: the repository's row (all of
# it: the request's first look at the repository then needs no statement of its own, see
# repositories.get) and the registry's documents (the registry policy, REGISTRY_POLICY_SCOPE, and
# the rest, which the request's own reads of them then take from here: settings_store.read_ahead).
# The repository is outer-joined to a single row, so a name that no repository has still brings
# the registry's documents.
_ONE_ROW = select(literal(1).label("one")).subquery()
_POLICIES = Prepared(lambda dialect: (
    select(*repositories.ROW, settings_store.all_as_one(dialect), clock.OFFSET)
    .select_from(_ONE_ROW)
    .outerjoin(Repository, (Repository.account_id == bindparam("account"))
               & (Repository.region == bindparam("region")) & (Repository.name == bindparam("name")))))
_POLICY_TEXT = [c.key for c in repositories.ROW].index("policy_text")


@dataclass(frozen=True)
class _Stored:
    repository_policy: Policy | None
    repository_id: int | None
    registry_policy: Policy | None
    registry_scope: str


@functools.lru_cache(maxsize=1024)
def _parsed(text: str | None, kind: str) -> Policy | None:
    """A stored policy, compiled; cached by text, so a faulty one is reported once per process."""
    if not text:
        return None
    try:
        return parse(text, kind)
    except PolicyError as exc:  # stored before policies were enforced, under looser checks
        log.warning("ignoring a stored %s policy that is not valid IAM: %s", kind, exc)
        return None


def _stored(ctx: Context, repository: str | None) -> _Stored:
    name = repository if repository not in (None, EVERY_REPOSITORY) else ""
    memo_key = ("access:stored", ctx.scope, name)
    found = ctx.memo.get(memo_key)
    if found is None:
        row = _POLICIES.one(ctx.session, {"account": ctx.scope.account_id, "region": ctx.scope.region, "name": name})
        repository_row, documents = row[:-2], row[-2] or {}
        if repository_row[0] is not None:
            repositories.read_ahead(ctx, name, repository_row)
        settings_store.read_ahead(ctx, documents)
        ctx.read_ahead_now(row[-1])
        found = _Stored(_parsed(repository_row[_POLICY_TEXT], "repository"), repository_row[0],
                        _parsed(documents.get(REGISTRY_POLICY), "registry"), documents.get(SCOPE_SETTING) or "V2")
        ctx.memo[memo_key] = found
    return found


class RequestKeys:
    """The condition keys of one request, each computed when a statement first asks for it (most
    statements never do): what they say comes from the principal, the connection, the request's
    tags, the registry addressed, the emulator clock and, read only then, the repository's tags."""

    def __init__(self, ctx: Context, need: Need, origin: Origin, repository_id: int | None) -> None:
        self.ctx, self.need, self.origin, self._repository_id = ctx, need, origin, repository_id
        self._seen: dict[str, str | list[str] | None] = {}
        self._tag_maps: dict[str, dict[str, str]] = {}

    def get(self, key: str) -> str | list[str] | None:
        if key in self._seen:
            return self._seen[key]
        provider = _KEYS.get(key)
        if provider is not None:
            found = provider(self)
        else:
            prefix, _, tag = key.partition("/")
            found = self._tags(prefix).get(tag) if tag and prefix in _TAG_SOURCES else None
        self._seen[key] = found
        return found

    def _tags(self, prefix: str) -> dict[str, str]:
        """Tag key (lower case) -> value, for one of the ``.../<tag key>`` families."""
        if prefix not in self._tag_maps:
            self._tag_maps[prefix] = {k.lower(): v for k, v in _TAG_SOURCES[prefix](self)}
        return self._tag_maps[prefix]

    def resource_tags(self) -> list[tuple[str, str]]:
        if self._repository_id is None:
            return []
        stmt = select(ResourceTag.key, ResourceTag.value).where(ResourceTag.repository_id == self._repository_id)
        return [(k, v) for k, v in self.ctx.session.execute(stmt)]


_KEYS: dict[str, Callable[[RequestKeys], str | list[str] | None]] = {
    "aws:principalarn": lambda r: r.ctx.principal.entity_arn,
    "aws:principalaccount": lambda r: r.ctx.principal.account_id,
    "aws:principaltype": lambda r: r.ctx.principal.kind,
    "aws:username": lambda r: r.ctx.principal.username,
    "aws:userid": lambda r: r.ctx.principal.account_id if r.ctx.principal.is_root else None,
    "aws:sourceip": lambda r: r.origin.source_ip,
    "aws:useragent": lambda r: r.origin.user_agent,
    "aws:securetransport": lambda r: "true" if r.origin.secure else "false",
    "aws:currenttime": lambda r: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.ctx.now)),
    "aws:epochtime": lambda r: str(int(r.ctx.now)),
    "aws:requestedregion": lambda r: r.ctx.scope.region,
    "aws:resourceaccount": lambda r: r.ctx.scope.account_id,
    "aws:viaawsservice": lambda r: "false",
    "aws:principalisawsservice": lambda r: "false",
    "aws:tagkeys": lambda r: list(r.need.tag_keys) if r.need.tag_keys is not None else None,
}
_TAG_SOURCES: dict[str, Callable[[RequestKeys], Iterable[tuple[str, str]]]] = {
    "aws:principaltag": lambda r: r.ctx.services.iam.tags(r.ctx.principal).items(),
    "aws:requesttag": lambda r: r.need.request_tags,
    "aws:resourcetag": RequestKeys.resource_tags,
    "ecr:resourcetag": RequestKeys.resource_tags,
}


def decide(ctx: Context, need: Need, origin: Origin, repository_policy: Policy | None = None,
           replace_repository_policy: bool = False) -> evaluate.Decision:
    """The decision for one need of ``ctx.principal`` on ``ctx.scope`` (the registry addressed).
    ``replace_repository_policy`` judges as if the repository policy were ``repository_policy``."""
    identity = ctx.services.iam.identity_policies(ctx.principal)
    resource = resource_of(ctx.scope, need.repository)
    if need.action.lower() in evaluate.IDENTITY_ONLY:  # no database read: identity policies alone decide
        stored = _Stored(None, None, None, "V2")
    else:
        stored = _stored(ctx, need.repository)
    keys = RequestKeys(ctx, need, origin, stored.repository_id)
    return evaluate.decide(
        ctx.principal, need.action, resource, ctx.scope.account_id, keys, identity,
        repository_policy if replace_repository_policy else stored.repository_policy,
        stored.registry_policy, stored.registry_scope,
    )


def authorize(ctx: Context, needs: Iterable[Need], origin: Origin) -> None:
    """Raise AccessDeniedException unless every need is allowed."""
    ctx.memo[_ORIGIN_MEMO] = origin
    for need in needs:
        decision = decide(ctx, need, origin)
        if not decision.allowed:
            raise errors.AccessDeniedException(decision.message)


def permits(ctx: Context, need: Need, origin: Origin | None = None) -> bool:
    return decide(ctx, need, origin or ctx.memo.get(_ORIGIN_MEMO, Origin())).allowed


def decide_foreign(ctx: Context, action: str, resource: str, resource_account: str) -> evaluate.Decision:
    """``ctx.principal``'s permission for another service's action on that service's resource (such as
    ``signer:SignPayload`` on a signing profile). Its identity policies decide in the resource's account;
    the emulator keeps no resource-based policies of other services, so a resource of another account is
    denied as IAM denies one whose policy does not grant the caller."""
    keys = RequestKeys(ctx, Need(action, None), ctx.memo.get(_ORIGIN_MEMO, Origin()), None)
    return evaluate.decide(ctx.principal, action, resource, resource_account, keys,
                           ctx.services.iam.identity_policies(ctx.principal))


def would_lock_out(ctx: Context, repository: str, proposed: Policy) -> bool:
    """Whether the caller could no longer set this repository's policy once ``proposed`` is in force
    (SetRepositoryPolicy's ``force`` guard)."""
    need = Need("ecr:SetRepositoryPolicy", repository)
    return not decide(ctx, need, ctx.memo.get(_ORIGIN_MEMO, Origin()), proposed, True).allowed


def root_of(account_id: str, access_key_id: str, region: str) -> Principal:
    """The account root an undeclared access key acts as."""
    return Principal(account_id, access_key_id, f"arn:{partition_for(region)}:iam::{account_id}:root")
