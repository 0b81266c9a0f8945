"""Durable background work: jobs are rows, claimed by worker threads of any replica.

A job is due when the emulator clock passes its ``run_after``, so tests move the clock instead
of sleeping. Claims are short leases on real time, renewed by a heartbeat while the handler
runs: a job whose worker died is claimed again within ``LEASE_SECONDS``, however long jobs may
take. A claim is known by its attempt number, so a worker whose lease was taken over cannot
overwrite the outcome of the worker that took it. Periodic tasks (upload GC, lifecycle sweeps) are rows in ``schedules`` that
enqueue a job whenever the clock passes their next run time. Handlers are plain functions of
(services, payload) that open their own units of work.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update

from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.events import JobFinished
from ecr_emulator.storage.models import Job, Schedule
from ecr_emulator.storage.sql import insert_ignore

log = logging.getLogger(__name__)

Handler = Callable[[Services, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}
LEASE_SECONDS = 30.0
HEARTBEAT_SECONDS = 10.0
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Periodic:
    name: str
    kind: str
    interval: Callable[[Services], float]


PERIODIC: dict[str, Periodic] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


def periodic(name: str, kind: str, interval: Callable[[Services], float]) -> None:
    PERIODIC[name] = Periodic(name, kind, interval)


def enqueue(
    ctx: Context, kind: str, payload: dict[str, Any], *, delay: float = 0.0, dedupe_key: str | None = None
) -> None:
    """Add a job in the caller's transaction (so it exists exactly when the change it follows does)."""
    values = {"kind": kind, "payload": payload, "dedupe_key": dedupe_key, "status": "pending",
              "run_after": ctx.now + delay, "attempts": 0, "created_at": ctx.now}
    if dedupe_key is not None:
        if not insert_ignore(ctx.session, Job, values):
            return  # the same work is already queued
    else:
        ctx.session.add(Job(**values))
        ctx.session.flush()
    runner = ctx.services.job_runner
    if runner is not None:
        ctx.after_commit.append(runner.wake)


class JobRunner:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ---- one step at a time (also what `jobs run` and the control API call) ----

    def schedule_periodic(self) -> None:
        db, now = self.services.db, self.services.clock.now()
        next_runs = dict(db.run(lambda s: list(s.execute(select(Schedule.name, Schedule.next_run_at)))))
        if all(p.name in next_runs and now < next_runs[p.name] for p in PERIODIC.values()):
            return  # nothing due: every poll of every thread need not take the write lock

        def tick(session) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
            due = []
            for p in PERIODIC.values():
                interval = p.interval(self.services)
                if insert_ignore(session, Schedule, {"name": p.name, "next_run_at": now + interval}):
                    continue
                row = session.scalars(select(Schedule).where(Schedule.name == p.name).with_for_update()).first()
                if row is None:  # a reset wiped it after our insert lost the race: the next poll recreates it
                    continue
                if now >= row.next_run_at:
                    row.next_run_at = now + interval
                    due.append((p.name, p.kind))
            for name, kind in due:
                insert_ignore(session, Job, {"kind": kind, "payload": {}, "dedupe_key": f"periodic:{name}",
                                             "status": "pending", "run_after": now, "attempts": 0,
                                             "created_at": now})
            return due

        db.run(tick, write=True)

    def claim(self) -> Job | None:
        now, real = self.services.clock.now(), time.time()
        claimable = or_(
            (Job.status == "pending") & (Job.run_after <= now),
            (Job.status == "running") & (Job.locked_until < real),  # its worker's lease ran out
        )
        if self.services.db.run(lambda s: s.scalar(select(Job.id).where(claimable).limit(1))) is None:
            return None  # a read tells; only a claim takes the write lock

        def take(session) -> Job | None:  # type: ignore[no-untyped-def]
            job = session.scalars(
                select(Job)
                .where(claimable)
                .order_by(Job.run_after, Job.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if job is None:
                return None
            job.status = "running"
            job.attempts += 1
            job.locked_until = real + LEASE_SECONDS
            session.flush()
            session.expunge(job)
            return job

        return self.services.db.run(take, write=True)

    def _renew(self, job: Job) -> bool:
        """Extend the lease of our claim; False if it is no longer ours."""

        def renew(session) -> bool:  # type: ignore[no-untyped-def]
            return session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == "running", Job.attempts == job.attempts)
                .values(locked_until=time.time() + LEASE_SECONDS)
            ).rowcount > 0

        return bool(self.services.db.run(renew, write=True))

    @contextmanager
    def _heartbeat(self, job: Job) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(HEARTBEAT_SECONDS):
                try:
                    if not self._renew(job):
                        return
                except Exception as exc:  # a busy or full database: try again on the next beat
                    log.warning("could not renew the lease of job %s: %s", job.id, exc)

        thread = threading.Thread(target=beat, name=f"lease-{job.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(HEARTBEAT_SECONDS)

    def execute(self, job: Job) -> bool:
        fn = HANDLERS.get(job.kind)
        error = None
        started = time.perf_counter()
        if fn is None:
            error = f"no handler for job kind {job.kind!r}"
        else:
            try:
                with self._heartbeat(job):
                    fn(self.services, dict(job.payload))
            except Exception:  # a failing job must not take the worker down
                error = traceback.format_exc()
                log.exception("job %s (%s) failed", job.id, job.kind)

        def finish(session) -> bool:  # type: ignore[no-untyped-def]
            row = session.get(Job, job.id)
            if row is None or row.status != "running" or row.attempts != job.attempts:
                return False  # our lease ran out and another worker took the job over
            if error is None:
                session.delete(row)
            elif row.attempts >= MAX_ATTEMPTS or fn is None:
                row.status, row.last_error = "failed", error
                row.finished_at = self.services.clock.now()
                row.dedupe_key = None
            else:
                row.status, row.last_error = "pending", error
                row.run_after = self.services.clock.now() + 2 ** row.attempts
                row.locked_until = None
            return True

        if self.services.db.run(finish, write=True) and error is None:
            log.info("job %s (%s) done, attempt %s", job.id, job.kind, job.attempts)
        self.services.events.publish(None, JobFinished(job.kind, error is None, time.perf_counter() - started))
        return error is None

    def run_due(self, max_jobs: int = 10_000) -> dict[str, int]:
        """Run every job that is due now, in this thread. Returns counts for the caller."""
        self.schedule_periodic()
        ran = failed = 0
        while ran + failed < max_jobs:
            job = self.claim()
            if job is None:
                break
            if self.execute(job):
                ran += 1
            else:
                failed += 1
        return {"succeeded": ran, "failed": failed}

    # ---- worker threads ----

    def wake(self) -> None:
        self._wake.set()

    def start(self, threads: int, poll_interval: float) -> None:
        for i in range(threads):
            t = threading.Thread(target=self._loop, args=(poll_interval,), name=f"jobs-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            # wake again and again: another thread may clear the event between our set and this
            # thread's wait, which would otherwise cost a whole poll interval on every stop
            while t.is_alive() and time.monotonic() < deadline:
                self._wake.set()
                t.join(0.02)
        self._threads.clear()

    def _loop(self, poll_interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.schedule_periodic()
                while not self._stop.is_set():
                    job = self.claim()
                    if job is None:
                        break
                    self.execute(job)
            except Exception:
                log.exception("job loop error")
            self._wake.wait(poll_interval)
            self._wake.clear()

