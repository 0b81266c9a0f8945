"""The long-lived services and the per-request unit of work both planes hand to ``core``.

``Services`` is built once per process. ``Services.unit(...)`` yields a ``Context``: who is
calling, which registry, the session of the unit's one transaction, and one ``now`` for the
whole request. Any exception rolls the whole request back, so a failed call leaves nothing
half-written in the database.

The transaction opens when the unit first uses ``ctx.session`` (and a writing unit's ``now`` is
read inside it, after the write lock, so timestamps follow the order writes commit in). A unit
that never touches the database (GetAuthorizationToken: identity, the clock, a signature) pays
for no transaction: its ``now`` is one statement on a pooled connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
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
        ctx = Context(self, scope, principal or Principal(scope.account_id, ""), write)
        try:
            yield ctx
            ctx.close()  # commits, if a transaction was opened
        except BaseException as exc:
            ctx.close(exc)  # rolls back (a failed commit has rolled back already)
            for callback in ctx.on_rollback:
                callback()
            raise
        for callback in ctx.after_commit:
            callback()


class Context:
    """One unit of work: see the module docstring."""

    def __init__(self, services: Services, scope: Scope, principal: Principal, write: bool = False) -> None:
        self.services = services
        self.scope = scope
        self.principal = principal
        self.write = write
        self.after_commit: list[Callable[[], None]] = []
        self.on_rollback: list[Callable[[], None]] = []
        self.memo: dict[Any, Any] = {}  # per-request caches of derived facts
        self.carry: dict[Any, Any] = {}  # what outside work told this run (Services.run)
        self._session: Session | None = None
        self._now: float | None = None
        self._transaction = ExitStack()
        self._ended = False

    @property
    def session(self) -> Session:
        """The unit's session; its transaction begins on first use."""
        if self._session is None:
            if self._ended:
                raise RuntimeError("this unit of work has ended; open another one")
            self._session = self._transaction.enter_context(self.services.db.transaction(write=self.write))
        return self._session

    @property
    def now(self) -> float:
        """The emulator clock when the request began, read once."""
        if self._now is None:
            in_transaction = self._session is not None or self.write
            self._now = self.services.clock.now(self.session if in_transaction else None)
        return self._now

    def read_ahead_now(self, stored_offset: str | None) -> None:
        """The clock's offset as a statement of this unit read it (``clock.OFFSET``): ``now`` uses
        it rather than reading the offset again, unless it was read already."""
        if self._now is None:
            self._now = self.services.clock.now_from(stored_offset)

    def close(self, exc: BaseException | None = None) -> None:
        """End the transaction, if one was opened: commit, or roll back when ``exc`` is given."""
        self._ended = True
        if exc is None:
            self._transaction.close()
        else:
            self._transaction.__exit__(type(exc), exc, exc.__traceback__)

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
