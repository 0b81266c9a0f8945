"""The long-lived services and the per-request unit of work both planes hand to ``core``.

``Services`` is built once per process. ``Services.unit(...)`` opens one transaction and yields
a ``Context``: who is calling, which registry, the session, and one ``now`` for the whole
request. Any exception rolls the whole request back, so a failed call leaves nothing
half-written in the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from ecr_emulator.config import Settings
from ecr_emulator.core.clock import Clock
from ecr_emulator.core.events import Bus
from ecr_emulator.core.iam.principals import IamConfig
from ecr_emulator.core.images.pulls import PullRecorder
from ecr_emulator.core.naming import Principal, RegistryHosts, Scope
from ecr_emulator.core.tokens import TokenSigner
from ecr_emulator.storage.blobstore import BlobStore
from ecr_emulator.storage.db import Database, retrying

T = TypeVar("T")
MAX_OUTSIDE_WORK = 8  # rounds of outside work one unit of work may ask for before it must answer


class OutsideWork(Exception):
    """Raised inside a unit of work that cannot answer before some work is done with no
    transaction open: a fetch from an upstream registry, which must not hold the database (SQLite's
    single writer) while it waits on the network. ``Services.run`` rolls the unit back, calls
    ``work(carry)`` outside any transaction and runs the unit again; ``carry`` is the same dict as
    the rerun's ``ctx.carry``, so the work can tell the rerun how it went."""

    def __init__(self, work: Callable[[dict[Any, Any]], None]) -> None:
        super().__init__("work outside the transaction is needed first")
        self.work = work

    @classmethod
    def together(cls, pending: list[OutsideWork]) -> OutsideWork:
        """One request that needs several pieces of outside work (BatchGetImage of several
        uncached images) does them all before its single rerun."""
        if len(pending) == 1:
            return pending[0]

        def work(carry: dict[Any, Any]) -> None:
            for each in pending:
                each.work(carry)

        return cls(work)


@dataclass
class Services:
    settings: Settings
    db: Database
    blobs: BlobStore
    clock: Clock
    tokens: TokenSigner
    hosts: RegistryHosts
    pulls: PullRecorder
    events: Bus
    job_runner: Any = None  # set by the server when background workers run in this process
    iam: IamConfig = field(default_factory=IamConfig)  # principals declared with --iam-config

    @property
    def default_scope(self) -> Scope:
        return Scope(self.settings.default_account, self.settings.default_region)

    def run(self, scope: Scope, principal: Principal | None, fn: Callable[[Context], T], *,
            write: bool = False) -> T:
        """``fn(ctx)`` in one unit of work, run again from the start when the database reports
        that a concurrent transaction got there first (a unique row created meanwhile, a
        serialization failure, a deadlock): the second run sees the other writer's result and
        answers as ECR would had the two requests queued. ``fn`` must keep its effects inside
        the unit (database rows, and outside effects undone by ``on_rollback``). A unit that
        raises ``OutsideWork`` is run again once that work is done."""
        carry: dict[Any, Any] = {}

        def attempt() -> T:
            with self.unit(scope, principal, write=write) as ctx:
                ctx.carry = carry
                return fn(ctx)

        for _ in range(MAX_OUTSIDE_WORK):
            try:
                return retrying(attempt)
            except OutsideWork as outside:
                outside.work(carry)
        raise RuntimeError(f"a unit of work asked for outside work {MAX_OUTSIDE_WORK} times")

    @contextmanager
    def unit(self, scope: Scope, principal: Principal | None = None, write: bool = False) -> Iterator[Context]:
        ctx: Context | None = None
        try:
            with self.db.transaction(write=write) as session:
                ctx = Context(self, scope, principal or Principal(scope.account_id, ""), session,
                              self.clock.now(session))
                yield ctx
        except BaseException:
            for callback in ctx.on_rollback if ctx else []:
                callback()
            raise
        for callback in ctx.after_commit:
            callback()


@dataclass
class Context:
    services: Services
    scope: Scope
    principal: Principal
    session: Session
    now: float
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    on_rollback: list[Callable[[], None]] = field(default_factory=list)
    memo: dict[Any, Any] = field(default_factory=dict)  # per-request caches of derived facts
    carry: dict[Any, Any] = field(default_factory=dict)  # what outside work told this run (Services.run)

    @property
    def registry_id(self) -> str:
        return self.scope.account_id

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def blobs(self) -> BlobStore:
        return self.services.blobs

    @property
    def hosts(self) -> RegistryHosts:
        return self.services.hosts
