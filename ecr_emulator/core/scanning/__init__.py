"""Image scanning that reads the image: configuration, scans, the scanner and its job.

``core/features.py`` wires scan on push and the DescribeImages scan status in at start-up.
"""

from __future__ import annotations

from ecr_emulator.core.scanning import runner, scans

__all__ = ["runner", "scans"]
