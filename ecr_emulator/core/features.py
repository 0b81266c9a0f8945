"""Start-up wiring: which feature reacts to which domain event, in one place.

``wire`` is called once per ``Services`` (``core/bootstrap.py``). Importing the feature modules
here also registers their background job handlers (``core/jobs.py`` dispatches jobs by kind).
"""

from __future__ import annotations

from ecr_emulator.core.events import Bus, ImageDeleted, ImagePushed, ImageUntagged


def wire(bus: Bus) -> Bus:
    from ecr_emulator.core import gc  # noqa: F401 - its job handler and periodic task
    from ecr_emulator.core.images import storage_class  # noqa: F401 - the restore job
    from ecr_emulator.core.lifecycle import execute, preview  # noqa: F401 - lifecycle jobs
    from ecr_emulator.core.pullthrough import cache
    from ecr_emulator.core.replication import backfill, flow  # noqa: F401 - copy, delete and backfill jobs
    from ecr_emulator.core.scanning import runner, scans  # noqa: F401 - the scan jobs
    from ecr_emulator.core.signing import flow as signing  # the signing job

    bus.subscribe(ImagePushed, scans.on_push)
    bus.subscribe(ImagePushed, execute.after_push)
    bus.subscribe(ImagePushed, flow.on_push)
    bus.subscribe(ImagePushed, signing.on_push)
    bus.subscribe(ImageDeleted, execute.referrers_follow)
    bus.subscribe(ImageDeleted, flow.on_delete)
    bus.subscribe(ImageUntagged, flow.on_untag)
    bus.detail_extensions.append(scans.on_detail)
    bus.read_through.append(cache.on_miss)
    return bus
