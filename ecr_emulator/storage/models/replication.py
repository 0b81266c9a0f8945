"""Repository creation templates and replication (core/templates.py, core/replication/)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ecr_emulator.storage.models.base import Base


class CreationTemplate(Base):
    """A repository creation template: the settings of repositories ECR creates on the user's behalf."""

    __tablename__ = "creation_templates"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)  # the prefix without a trailing "/"
    prefix: Mapped[str] = mapped_column(String(256))  # as the user wrote it
    description: Mapped[str | None] = mapped_column(String(256), nullable=True)
    encryption_type: Mapped[str] = mapped_column(String(16), default="AES256")
    kms_key: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    resource_tags: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    tag_mutability: Mapped[str] = mapped_column(String(32), default="MUTABLE")
    tag_mutability_filters: Mapped[list[dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    repository_policy: Mapped[str | None] = mapped_column(Text, nullable=True)
    lifecycle_policy: Mapped[str | None] = mapped_column(Text, nullable=True)
    applied_for: Mapped[list[str]] = mapped_column(JSON)
    custom_role_arn: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)


class ImageReplication(Base):
    """Where one pushed image stands on its way to one destination registry."""

    __tablename__ = "image_replications"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    dest_account: Mapped[str] = mapped_column(String(12), primary_key=True)
    dest_region: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # IN_PROGRESS | COMPLETE | FAILED
    failure_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[float] = mapped_column(Double)


class ReplicationBackfill(Base):
    """A replication backfill: images pushed before replication, copied to one destination."""

    __tablename__ = "replication_backfills"
    __table_args__ = (Index("ix_replication_backfills_registry", "account_id", "region", "started_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    dest_account: Mapped[str] = mapped_column(String(12))
    dest_region: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    failure_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    failure_codes: Mapped[list[str]] = mapped_column(JSON)
    started_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class ReplicationBackfillResult(Base):
    """One image (and tag) a backfill replicated, or failed to."""

    __tablename__ = "replication_backfill_results"

    backfill_id: Mapped[str] = mapped_column(ForeignKey("replication_backfills.id", ondelete="CASCADE"),
                                             primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_name: Mapped[str] = mapped_column(String(256))
    image_digest: Mapped[str] = mapped_column(String(160))
    image_tag: Mapped[str | None] = mapped_column(String(300), nullable=True)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # None: not processed yet
    failure_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sub_failure_codes: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
