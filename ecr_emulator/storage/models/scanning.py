"""Image scanning (core/scanning) and the vulnerability database (core/vulndb)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ecr_emulator.storage.models.base import KEEP_ON_RESET, Base


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
