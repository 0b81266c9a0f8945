"""Domain events: what happened to an image, told to the features that react to it.

A push, a retag, a restore, a replicated copy and a deletion are published by the one ``core``
function that does them (both planes go through it), inside the request's unit of work, so a
subscriber's own effects (a scan job, a replication job) commit or roll back with the change
itself. Subscribers are wired once, explicitly, at start-up (``core/features.py``), not by
importing a module; each receives the context and the event, and an event says what kind of
push it was, so that replication can leave replicated copies alone and scanning can skip
retags.

Views that add members to an API structure (the scan status in ``ImageDetail``) are not events;
they are registered the same explicit way as ``detail_extensions``, and so are the handlers a
pull that misses asks before it answers not found (``read_through``, see ``core/readthrough.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ecr_emulator.core.context import Context
    from ecr_emulator.storage.models import Image, Repository

PushKind = Literal["new", "retag", "restore", "replicated"]


@dataclass(frozen=True)
class ImagePushed:
    """A manifest was stored (``new``), an existing one got a tag (``retag``), an archived one was
    pushed again (``restore``), or replication stored a copy (``replicated``, never replicated on)."""

    repository: Repository
    image: Image
    kind: PushKind
    tag: str | None = None


Origin = Literal["user", "lifecycle", "replication"]


@dataclass(frozen=True)
class ImageDeleted:
    """An image is about to be deleted (its rows are still readable): by a user (the API, the
    registry), by a lifecycle policy, or by replication of a deletion (never replicated on)."""

    repository: Repository
    image: Image
    origin: Origin = "user"


@dataclass(frozen=True)
class ImageUntagged:
    """A tag was removed from an image that stays (it has other tags, or an index needs it)."""

    repository: Repository
    image: Image
    tag: str
    origin: Origin = "user"


@dataclass(frozen=True)
class JobFinished:
    """A background job ran (published outside any unit of work: the context is None)."""

    kind: str
    succeeded: bool
    seconds: float


Event = ImagePushed | ImageDeleted | ImageUntagged | JobFinished
Subscriber = Callable[["Context", Any], None]
DetailExtension = Callable[["Context", "Repository", "Image", dict[str, Any]], None]


@dataclass
class Bus:
    _subscribers: dict[type, list[Subscriber]] = field(default_factory=dict)
    detail_extensions: list[DetailExtension] = field(default_factory=list)
    read_through: list[Callable[[Context, Any], None]] = field(default_factory=list)

    def subscribe(self, event_type: type, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.setdefault(event_type, [])
        if subscriber not in subscribers:
            subscribers.append(subscriber)

    def publish(self, ctx: Context | None, event: Event) -> None:
        for subscriber in self._subscribers.get(type(event), ()):
            subscriber(ctx, event)
