"""What a registry request needs permission for, checked in the request's first unit of work.

Each route carries the ECR action it needs (``registry/app.py`` ROUTES, ECR-BEHAVIOUR 12.2) on the
repository it names (``_catalog``: every repository). A monolithic upload (``POST ?digest=``) is
all three upload steps at once, and a final ``PUT`` with a body also uploads a part, so they need
those actions too. A cross-repository mount also needs
``ecr:GetDownloadUrlForLayer`` on the source, as ECR documents; without it the mount is not made
and the client uploads the blob instead, the fallback the protocol provides.

Handlers open their own units of work; ``Guarded`` hands them ``Services`` whose first unit runs
``core.access.authorize`` inside that same transaction, so a permitted request pays one more SQL
statement (not one more transaction) and a denied one changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from ecr_emulator.core import access
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.naming import Principal, Scope

T = TypeVar("T")

MOUNT_ROUTE = "upload_start"  # POST /blobs/uploads/: starts, mounts, or uploads monolithically
FINISH_ROUTE = "upload_finish"


class Guarded:
    """``Services`` whose first ``unit()`` checks the request's permissions."""

    def __init__(self, services: Services, required: list[access.Need], mount_source: access.Need | None,
                 origin: access.Origin) -> None:
        self._services = services
        self._required = required
        self._mount_source = mount_source
        self._origin = origin
        self._checked = not required
        self._may_mount = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._services, name)

    @contextmanager
    def unit(self, *args: Any, **kwargs: Any) -> Iterator[Context]:
        with self._services.unit(*args, **kwargs) as ctx:
            first = not self._checked
            if first:
                access.authorize(ctx, self._required, self._origin)
                if self._mount_source is not None:
                    self._may_mount = access.permits(ctx, self._mount_source, self._origin)
                self._checked = True
            try:
                yield ctx
            except BaseException:
                if first:  # rolled back: a rerun of this unit (Services.run) decides again, in its own
                    self._checked = False
                raise

    def run(self, scope: Scope, principal: Principal | None, fn: Callable[[Context], T], *,
            write: bool = False) -> T:
        """``Services.run`` over this object's ``unit``, so the rerun logic is the one of
        ``core/context.py`` and the first unit still authorizes."""
        return Services.run(self, scope, principal, fn, write=write)  # type: ignore[arg-type]

    def may_mount(self) -> bool:
        """Whether the caller may read the mount source (known once the first unit has opened)."""
        return self._may_mount

    def ensure_checked(self) -> None:
        """A handler that answered without opening a unit of work was never authorized: a bug."""
        if not self._checked:
            raise RuntimeError("registry handler answered without opening a unit of work; it was not authorized")


def guard(services: Services, action: str | None, route_name: str, params: Mapping[str, str],
          args: Mapping[str, str], has_body: bool, origin: access.Origin, presigned: bool) -> Guarded:
    """The permissions one registry request needs. A presigned download URL carries its own
    authorization (it was checked when GetDownloadUrlForLayer issued it)."""
    if action is None or presigned:
        return Guarded(services, [], None, origin)
    name = params.get("name")
    repository = name if name is not None else access.EVERY_REPOSITORY
    actions = [action]
    if route_name == MOUNT_ROUTE and args.get("digest") is not None:  # a monolithic upload: all three steps
        actions += ["ecr:UploadLayerPart", "ecr:CompleteLayerUpload"]
    elif route_name == FINISH_ROUTE and has_body:  # the last chunk travels with the completion
        actions.append("ecr:UploadLayerPart")
    required = [access.Need(a, repository) for a in actions]
    mount, source = args.get("mount"), args.get("from")
    mount_source = None
    if route_name == MOUNT_ROUTE and mount and source and source != name:
        mount_source = access.Need("ecr:GetDownloadUrlForLayer", source)
    return Guarded(services, required, mount_source, origin)
