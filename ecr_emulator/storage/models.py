"""The tables. Every row that belongs to a registry carries (account_id, region), directly or
through its repository, so state can never leak between accounts or regions.

Timestamps are float epoch seconds: that is what ECR puts on the wire, it needs no time-zone
handling in SQLite, and the injectable clock produces it directly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


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


# ---- image scanning (core/scanning) and the vulnerability database (core/vulndb) ----

# Tables holding reference data rather than registry state: the test-control reset keeps them.
KEEP_ON_RESET = {"keep_on_reset": True}


class VulnAdvisory(Base):
    """One OSV record of the vulnerability database (imported with ``ecr-emulator vulndb import``)."""

    __tablename__ = "vuln_advisories"
    __table_args__ = {"info": KEEP_ON_RESET}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    osv_id: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))  # what findings are called: the CVE when there is one
    modified: Mapped[float] = mapped_column(Double)
    published: Mapped[float | None] = mapped_column(Double, nullable=True)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    aliases: Mapped[list[str]] = mapped_column(JSON)
    severity: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # OSV severity[] (CVSS vectors)
    references: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    database_severity: Mapped[str | None] = mapped_column(String(32), nullable=True)


class VulnAffected(Base):
    """One ``affected[]`` entry of an advisory, looked up by (ecosystem, package) when matching."""

    __tablename__ = "vuln_affected"
    __table_args__ = (Index("ix_vuln_affected_package", "ecosystem", "package"), {"info": KEEP_ON_RESET})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    advisory_id: Mapped[int] = mapped_column(ForeignKey("vuln_advisories.id", ondelete="CASCADE"), index=True)
    ecosystem: Mapped[str] = mapped_column(String(128))
    package: Mapped[str] = mapped_column(String(255))
    ranges: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # ECOSYSTEM / SEMVER ranges only
    versions: Mapped[list[str]] = mapped_column(JSON)
    distro_severity: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ImageScan(Base):
    """The latest scan of an image for one scan type (BASIC / ENHANCED results are kept apart)."""

    __tablename__ = "image_scans"
    __table_args__ = (UniqueConstraint("image_id", "scan_type", name="uq_image_scans_image_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    scan_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[float] = mapped_column(Double)
    completed_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    source_updated_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    severity_counts: Mapped[dict[str, int] | None] = mapped_column(JSON, nullable=True)
    operating_system: Mapped[str | None] = mapped_column(String(128), nullable=True)


class ImageScanFinding(Base):
    """One finding of a completed scan, in the order DescribeImageScanFindings pages through them."""

    __tablename__ = "image_scan_findings"

    scan_id: Mapped[int] = mapped_column(ForeignKey("image_scans.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


# ---- repository creation templates and replication (core/templates.py, core/replication/) ----


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


class PullTimeExclusion(Base):
    """A principal whose pulls leave lastRecordedPullTime alone (RegisterPullTimeUpdateExclusion)."""

    __tablename__ = "pull_time_exclusions"

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_arn: Mapped[str] = mapped_column(String(200), primary_key=True)
    created_at: Mapped[float] = mapped_column(Double)


# ---- pull through cache (core/pullthrough/)


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


# ---- managed signing (core/signing/) ----


class ImageSigning(Base):
    """Where the signing of one image with one signing profile stands (DescribeImageSigningStatus)."""

    __tablename__ = "image_signings"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    profile_arn: Mapped[str] = mapped_column(String(200), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # IN_PROGRESS | COMPLETE | FAILED
    failure_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    signature_digest: Mapped[str | None] = mapped_column(String(160), nullable=True)  # the referrer it stored
    updated_at: Mapped[float] = mapped_column(Double)


class SigningKey(Base):
    """A key the emulator's stand-in for AWS Signer signs with, made once and shared by every replica:
    the root CA of a registry (``name`` "root") or a signing profile's key (``name`` its ARN), each
    with its certificate. Kept on reset, as AWS Signer's profiles outlive an ECR registry's contents."""

    __tablename__ = "signing_keys"
    __table_args__ = {"info": KEEP_ON_RESET}

    account_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    private_key: Mapped[str] = mapped_column(Text)  # PEM, PKCS#8
    certificate: Mapped[str] = mapped_column(Text)  # PEM
    created_at: Mapped[float] = mapped_column(Double)
