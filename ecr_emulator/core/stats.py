"""Counts of what the registry holds, read at once from the database (for the metrics scrape)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecr_emulator.storage.models import Blob, Image, Job, Repository, VulnAdvisory


@dataclass
class Stats:
    repositories: list[tuple[str, str, int]] = field(default_factory=list)  # account, region, count
    images: list[tuple[str, str, str, int]] = field(default_factory=list)  # account, region, status, count
    blobs: int = 0
    blob_bytes: int = 0
    jobs: list[tuple[str, str, int]] = field(default_factory=list)  # kind, status, count
    advisories: int = 0


def collect(session: Session) -> Stats:
    stats = Stats()
    stats.repositories = [
        (a, r, n) for a, r, n in session.execute(
            select(Repository.account_id, Repository.region, func.count())
            .group_by(Repository.account_id, Repository.region))
    ]
    stats.images = [
        (a, r, s, n) for a, r, s, n in session.execute(
            select(Repository.account_id, Repository.region, Image.status, func.count())
            .join(Repository, Repository.id == Image.repository_id)
            .group_by(Repository.account_id, Repository.region, Image.status))
    ]
    count, size = session.execute(select(func.count(), func.coalesce(func.sum(Blob.size), 0))).one()
    stats.blobs, stats.blob_bytes = int(count), int(size)
    stats.jobs = [(k, s, n) for k, s, n in session.execute(
        select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status))]
    stats.advisories = int(session.scalar(select(func.count()).select_from(VulnAdvisory)) or 0)
    return stats
