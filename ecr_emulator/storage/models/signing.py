"""Managed signing (core/signing/)."""

from __future__ import annotations

from sqlalchemy import (
    Double,
    ForeignKey,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ecr_emulator.storage.models.base import KEEP_ON_RESET, Base


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
