"""The read-through seam: what a pull that finds nothing asks before it answers "not found".

Every pull of both planes reads content through two ``core`` functions: manifests through
``images.query.for_pull`` (registry manifest GET/HEAD, BatchGetImage) and blobs through
``layers.pull_blob`` (registry blob GET, GetDownloadUrlForLayer). When one of them misses (no such
repository, tag or digest, a blob an image names but the repository cannot serve) or finds a tag
that is due a check against its source, it calls ``offer`` with a ``Miss``. The handlers wired at
start-up (``core/features.py``; the pull through cache is one) either decline (return), raise the
error the pull should answer with, or raise ``OutsideWork`` to fetch what is missing with no
transaction open, after which the pull runs again and finds it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ecr_emulator.core.context import Context


@dataclass(frozen=True)
class Miss:
    kind: Literal["manifest", "blob"]
    repository: str
    reference: str  # a tag or a digest (always a digest for blobs)
    repository_exists: bool
    stale: bool = False  # the tag is there, and due a check against its source

    @property
    def by_digest(self) -> bool:
        return ":" in self.reference


Handler = Callable[["Context", Miss], None]


def offer(ctx: Context, miss: Miss) -> None:
    """Give the wired handlers their chance; returns when every one declined."""
    for handler in ctx.services.events.read_through:
        handler(ctx, miss)
