"""The registry's own tables: repositories and their tags, blobs, images and what they
reference, uploads, jobs and schedules, registry settings, lifecycle previews, pull-time
exclusions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecr_emulator.storage.models.base import Base


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (UniqueConstraint("account_id", "region", "name", name="uq_repositories_scope_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[str] = mapped_column(String(12))
    region: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[float] = mapped_column(Double)
    tag_mutability: Mapped[str] = mapped_column(String(32), default="MUTABLE")
    tag_mutability_filters: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    scan_on_push: Mapped[bool] = mapped_column(Boolean, default=False)
    encryption_type: Mapped[str] = mapped_column(String(16), default="AES256")
    kms_key: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    policy_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    lifecycle_policy_text: Mapped[str | None] = mapped_column(Text, nullable=True)
    lifecycle_evaluated_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    # How many images the repository holds, kept by the database itself (IMAGE_COUNT below) so
    # that no code path can forget it: a push checks the limit without counting every image.
    image_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    tags: Mapped[list[ResourceTag]] = relationship(
        back_populates="repository", cascade="all, delete-orphan", order_by="ResourceTag.position"
    )


class ResourceTag(Base):
    """AWS resource tags on a repository (TagResource), not image tags."""

    __tablename__ = "resource_tags"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))
    position: Mapped[int] = mapped_column(Integer, default=0)

    repository: Mapped[Repository] = relationship(back_populates="tags")


class Blob(Base):
    """Content-addressed blob metadata; the bytes live in the BlobStore under the digest."""

    __tablename__ = "blobs"

    digest: Mapped[str] = mapped_column(String(160), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Double)


class RepositoryBlob(Base):
    """A blob uploaded to (or mounted into) a repository: blobs are visible per repository."""

    __tablename__ = "repository_blobs"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"), primary_key=True)
    created_at: Mapped[float] = mapped_column(Double)

    __table_args__ = (Index("ix_repository_blobs_digest", "digest"),)


class Image(Base):
    """One stored manifest (an ECR "image"), identified by the sha256 of its exact bytes."""

    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("repository_id", "digest", name="uq_images_repository_digest"),
        Index("ix_images_subject", "repository_id", "subject_digest"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(160))
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    media_type: Mapped[str] = mapped_column(String(255))
    artifact_media_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    artifact_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    subject_digest: Mapped[str | None] = mapped_column(String(160), nullable=True)
    annotations: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    pushed_at: Mapped[float] = mapped_column(Double)
    last_pulled_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    last_archived_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_activated_at: Mapped[float | None] = mapped_column(Double, nullable=True)

    tags: Mapped[list[ImageTag]] = relationship(
        back_populates="image", cascade="all, delete-orphan", passive_deletes=True, order_by="ImageTag.tagged_at"
    )
    blobs: Mapped[list[ImageBlob]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ImageBlob.position"
    )
    children: Mapped[list[ImageChild]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="ImageChild.position"
    )


class ImageTag(Base):
    __tablename__ = "image_tags"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(300), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    tagged_at: Mapped[float] = mapped_column(Double)

    image: Mapped[Image] = relationship(back_populates="tags")


# Triggers that keep repositories.image_count, per dialect: created with the tables
# (create_all) and by migration 0009, which also counts the images already stored. Every
# insert and delete of an image is counted, whichever statement or cascade makes it.
IMAGE_COUNT = {
    "sqlite": [
        "CREATE TRIGGER images_counted_insert AFTER INSERT ON images BEGIN "
        "UPDATE repositories SET image_count = image_count + 1 WHERE id = NEW.repository_id; END",
        "CREATE TRIGGER images_counted_delete AFTER DELETE ON images BEGIN "
        "UPDATE repositories SET image_count = image_count - 1 WHERE id = OLD.repository_id; END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION images_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'INSERT' THEN "
        "UPDATE repositories SET image_count = image_count + 1 WHERE id = NEW.repository_id; "
        "ELSE UPDATE repositories SET image_count = image_count - 1 WHERE id = OLD.repository_id; "
        "END IF; RETURN NULL; END $$",
        "CREATE TRIGGER images_counted AFTER INSERT OR DELETE ON images FOR EACH ROW EXECUTE FUNCTION images_counted()",
    ],
}
IMAGE_COUNT_DROP = {
    "sqlite": ["DROP TRIGGER IF EXISTS images_counted_insert", "DROP TRIGGER IF EXISTS images_counted_delete"],
    "postgresql": ["DROP TRIGGER IF EXISTS images_counted ON images", "DROP FUNCTION IF EXISTS images_counted()"],
}
for _dialect, _statements in IMAGE_COUNT.items():
    for _statement in _statements:
        event.listen(Image.__table__, "after_create", DDL(_statement).execute_if(dialect=_dialect))
event.listen(Image.__table__, "after_drop", DDL(IMAGE_COUNT_DROP["postgresql"][1]).execute_if(dialect="postgresql"))


class ImageBlob(Base):
    """A blob (config or layer) a manifest references, as the manifest declares it."""

    __tablename__ = "image_blobs"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(160), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    kind: Mapped[str] = mapped_column(String(8))  # "config" | "layer"


class ImageChild(Base):
    """A manifest an index / manifest list references."""

    __tablename__ = "image_children"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    child_digest: Mapped[str] = mapped_column(String(160), index=True)


class Upload(Base):
    """A blob upload in progress. The row is the truth about it, wherever it continues: the
    bytes recorded so far (``size``, held by the BlobStore's staging ``segments``), the sha256
    state after them, and who may append now (a lease on real time, see ``core.upload_leases``)."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[float] = mapped_column(Double)
    parts: Mapped[int] = mapped_column(Integer, default=0)
    last_part_size: Mapped[int] = mapped_column(BigInteger, default=0)
    small_part_seen: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    segments: Mapped[list[list[Any]]] = mapped_column(JSON, default=list)
    hash_state: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Double, nullable=True)


class EmulatorState(Base):
    """Process-wide state every replica must share: the emulator clock's offset, the generated
    token secret. Kept on reset (the control API resets the clock itself)."""

    __tablename__ = "emulator_state"
    __table_args__ = {"info": {"keep_on_reset": True}}

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Job(Base):
    """Durable background work, claimed by worker threads of any replica."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "status", "run_after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str | None] = mapped_column(String(512), nullable=True, unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|running|done|failed
    run_after: Mapped[float] = mapped_column(Double)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float | None] = mapped_column(Double, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Double)
    finished_at: Mapped[float | None] = mapped_column(Double, nullable=True)


class Schedule(Base):
    """When each periodic task (upload GC, lifecycle sweep...) is next due, on the emulator clock."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_run_at: Mapped[float] = mapped_column(Double)


class RegistrySetting(Base):
    """Registry-wide documents of one (account, region): scanning, replication, policies, settings."""

    __tablename__ = "registry_settings"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class LifecyclePreview(Base):
    """The latest lifecycle policy preview (dry run) of a repository."""

    __tablename__ = "lifecycle_previews"

    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True)
    policy_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # IN_PROGRESS | COMPLETE | FAILED | EXPIRED
    started_at: Mapped[float] = mapped_column(Double)
    completed_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    failure: Mapped[str | None] = mapped_column(Text, nullable=True)


class PullTimeExclusion(Base):
    """A principal whose pulls leave lastRecordedPullTime alone (RegisterPullTimeUpdateExclusion)."""

    __tablename__ = "pull_time_exclusions"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_arn: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[float] = mapped_column(Double)
