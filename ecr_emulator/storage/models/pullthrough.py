"""The pull through cache (core/pullthrough/)."""

from __future__ import annotations

from sqlalchemy import (
    Double,
    ForeignKey,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from ecr_emulator.storage.models.base import Base


class PullThroughRule(Base):
    """A pull through cache rule: repositories under ``key`` cache images of an upstream registry."""

    __tablename__ = "pull_through_rules"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)  # the prefix without a trailing "/", or ROOT
    prefix: Mapped[str] = mapped_column(String(32))  # as the user wrote it
    upstream_registry: Mapped[str] = mapped_column(String(32))
    upstream_url: Mapped[str] = mapped_column(String(256))
    upstream_prefix: Mapped[str] = mapped_column(String(32), default="ROOT")
    credential_arn: Mapped[str | None] = mapped_column(String(612), nullable=True)
    custom_role_arn: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)


class PullThroughTag(Base):
    """A tag the cache stored from upstream, and when a pull of it next asks upstream again."""

    __tablename__ = "pull_through_tags"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(300), primary_key=True)
    next_check_at: Mapped[float] = mapped_column(Double)


class UpstreamFetch(Base):
    """Who is fetching one upstream reference right now: a lease on real time, so that many pulls of
    one uncached image, in any process of any replica, fetch it once."""

    __tablename__ = "upstream_fetches"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of what is fetched
    lease_token: Mapped[str] = mapped_column(String(32))
    lease_until: Mapped[float] = mapped_column(Double)
