"""Image scanning that reads the image: configuration, scans, the scanner and its job.

Importing this package registers the push hook (scan on push), the DescribeImages detail hook
(scan status and summary) and the scan jobs; ``core.bootstrap.load_features`` does that once.
"""

from __future__ import annotations

from ecr_emulator.core.images.put import PUSH_HOOKS
from ecr_emulator.core.images.query import DETAIL_HOOKS
from ecr_emulator.core.scanning import runner, scans

if scans.on_push not in PUSH_HOOKS:
    PUSH_HOOKS.append(scans.on_push)
if scans.on_detail not in DETAIL_HOOKS:
    DETAIL_HOOKS.append(scans.on_detail)

__all__ = ["runner", "scans"]
