"""Recovery of background work: a job whose worker died is taken over as soon as its short lease
runs out, a running job keeps its lease by heartbeat however long it takes, a worker that lost
its lease cannot overwrite the outcome, and a lifecycle run killed after expiring images has
already released their blob links (so they do not wait a day for the collector).

In-process: the job runner and the lifecycle runner over a real data directory (and database).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import select

from ecr_emulator.core import gc, jobs
from ecr_emulator.core.lifecycle import execute
from ecr_emulator.core.naming import Scope
from ecr_emulator.core.repositories import create, get
from ecr_emulator.storage.models import Blob, Job, RepositoryBlob
from tests.images import build_image, store_in_process

SCOPE = Scope("123456789012", "us-east-1")


@pytest.fixture
def short_leases(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(jobs, "LEASE_SECONDS", 1.0)
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.2)


def _enqueue(services, kind: str) -> None:  # type: ignore[no-untyped-def]
    with services.unit(SCOPE, write=True) as ctx:
        jobs.enqueue(ctx, kind, {})


def test_a_dead_workers_job_is_taken_over_when_its_lease_runs_out(services, short_leases, monkeypatch):
    ran: list[str] = []
    monkeypatch.setitem(jobs.HANDLERS, "probe", lambda s, p: ran.append("ran"))
    _enqueue(services, "probe")
    dead, alive = jobs.JobRunner(services), jobs.JobRunner(services)
    claimed = dead.claim()  # ... and its worker dies without finishing or renewing
    assert claimed is not None and alive.claim() is None
    time.sleep(1.3)
    again = alive.claim()
    assert again is not None and again.id == claimed.id and again.attempts == 2
    assert alive.execute(again) and ran == ["ran"]
    assert services.db.run(lambda s: s.scalar(select(Job.id).where(Job.id == claimed.id))) is None


def test_a_long_job_keeps_its_lease_and_a_usurped_worker_cannot_record_its_outcome(
        services, short_leases, monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow(s, p):  # type: ignore[no-untyped-def]
        started.set()
        release.wait(10)

    monkeypatch.setitem(jobs.HANDLERS, "slow", slow)
    _enqueue(services, "slow")
    first, other = jobs.JobRunner(services), jobs.JobRunner(services)
    job = first.claim()
    worker = threading.Thread(target=first.execute, args=(job,))
    worker.start()
    started.wait(5)
    time.sleep(2.5)  # more than two leases: only the heartbeat keeps the job ours
    assert other.claim() is None
    release.set()
    worker.join(10)
    assert services.db.run(lambda s: s.scalar(select(Job.id))) is None

    # a claim taken over after its lease ran out: the old worker's outcome is ignored
    monkeypatch.setitem(jobs.HANDLERS, "fail", lambda s, p: (_ for _ in ()).throw(RuntimeError("boom")))
    _enqueue(services, "fail")
    stale = first.claim()
    time.sleep(1.3)
    current = other.claim()
    assert current is not None and current.attempts == stale.attempts + 1
    assert not first.execute(stale)  # it fails, but the job is the other worker's now
    row = services.db.run(lambda s: s.get(Job, current.id))
    assert row.status == "running" and row.attempts == current.attempts


def test_lifecycle_releases_links_in_the_batch_that_expires_the_images(services, monkeypatch):
    old, new = build_image(), build_image()
    with services.unit(SCOPE, write=True) as ctx:
        create(ctx, "lc")
        store_in_process(ctx, "lc", old, "old")
    services.clock.advance(10)  # the newer image is pushed later
    with services.unit(SCOPE, write=True) as ctx:
        store_in_process(ctx, "lc", new, "new")
        repo = get(ctx, "lc")
        repo.lifecycle_policy_text = json.dumps({"rules": [{
            "rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"}}]})
        repo_id = repo.id

    def killed(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SystemExit("killed after the batches committed")

    monkeypatch.setattr(services.db, "run", killed)  # the first transaction after the expiry batches
    with pytest.raises(SystemExit):
        execute.run_repository(services, SCOPE, "lc")
    monkeypatch.undo()
    linked = services.db.run(lambda s: set(s.scalars(
        select(RepositoryBlob.digest).where(RepositoryBlob.repository_id == repo_id))))
    assert linked == {b.digest for b in new.blobs}
    gc.collect(services)  # the next collection, with no waiting for the upload age
    assert services.db.run(lambda s: set(s.scalars(select(Blob.digest)))) == {b.digest for b in new.blobs}
    assert all(services.blobs.stat(b.digest) is None for b in old.blobs)
    assert all(services.blobs.stat(b.digest) == b.size for b in new.blobs)
