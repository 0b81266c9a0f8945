"""The tables. Every row that belongs to a registry carries (account_id, region), directly or
through its repository, so state can never leak between accounts or regions.

Timestamps are float epoch seconds: that is what ECR puts on the wire, it needs no time-zone
handling in SQLite, and the injectable clock produces it directly.

One module per feature; everything is importable from here, and importing this package
registers every table on ``Base.metadata`` (what Alembic and ``create_all`` read).
"""

from ecr_emulator.storage.models.base import KEEP_ON_RESET, NAMING, Base
from ecr_emulator.storage.models.pullthrough import PullThroughRule, PullThroughTag, UpstreamFetch
from ecr_emulator.storage.models.registry import (
    Blob,
    EmulatorState,
    Image,
    ImageBlob,
    ImageChild,
    ImageTag,
    Job,
    LifecyclePreview,
    PullTimeExclusion,
    RegistrySetting,
    Repository,
    RepositoryBlob,
    ResourceTag,
    Schedule,
    Upload,
)
from ecr_emulator.storage.models.replication import (
    CreationTemplate,
    ImageReplication,
    ReplicationBackfill,
    ReplicationBackfillResult,
)
from ecr_emulator.storage.models.scanning import ImageScan, ImageScanFinding, VulnAdvisory, VulnAffected
from ecr_emulator.storage.models.signing import ImageSigning, SigningKey

__all__ = [
    "NAMING",
    "Base",
    "KEEP_ON_RESET",
    "Repository",
    "ResourceTag",
    "Blob",
    "RepositoryBlob",
    "Image",
    "ImageTag",
    "ImageBlob",
    "ImageChild",
    "Upload",
    "EmulatorState",
    "Job",
    "Schedule",
    "RegistrySetting",
    "LifecyclePreview",
    "PullTimeExclusion",
    "VulnAdvisory",
    "VulnAffected",
    "ImageScan",
    "ImageScanFinding",
    "CreationTemplate",
    "ImageReplication",
    "ReplicationBackfill",
    "ReplicationBackfillResult",
    "PullThroughRule",
    "PullThroughTag",
    "UpstreamFetch",
    "ImageSigning",
    "SigningKey",
]
