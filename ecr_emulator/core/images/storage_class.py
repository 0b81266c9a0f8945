"""Storage classes (ECR-BEHAVIOUR 14.1): archiving an image and restoring it.

ARCHIVE makes an image ARCHIVED at once. STANDARD starts a restore: the image is ACTIVATING
until a durable job, due ``archive_restore_seconds`` later on the emulator clock, makes it
ACTIVE again. Archived images are listed under the ARCHIVED/ANY status filters but cannot be
pulled; images an index still references cannot be archived.
"""

from __future__ import annotations

from typing import Any

from ecr_emulator.core import errors, jobs, repositories
from ecr_emulator.core.context import Context, Services
from ecr_emulator.core.images import lookup
from ecr_emulator.core.images.delete import referencing_indexes
from ecr_emulator.core.naming import Scope
from ecr_emulator.storage.models import Image, Repository


def _not_supported(message: str) -> errors.ImageStorageClassUpdateNotSupportedException:
    return errors.ImageStorageClassUpdateNotSupportedException(message)


def archive(ctx: Context, repo: Repository, image: Image) -> None:
    if image.status != "ACTIVE":
        raise _not_supported(f"The image with digest '{image.digest}' is {image.status} and cannot be archived.")
    parents = referencing_indexes(ctx, repo, image.digest)
    if parents:
        raise _not_supported(
            f"The image with digest '{image.digest}' is referenced by manifest list {parents[0]} and cannot be "
            "archived while the manifest list exists."
        )
    image.status = "ARCHIVED"
    image.last_archived_at = ctx.now


def restore(ctx: Context, image: Image) -> None:
    if image.status != "ARCHIVED":
        raise _not_supported(f"The image with digest '{image.digest}' is {image.status} and cannot be restored.")
    image.status = "ACTIVATING"
    jobs.enqueue(
        ctx,
        "image_activation",
        {"account": ctx.scope.account_id, "region": ctx.scope.region, "image": image.id},
        delay=ctx.settings.archive_restore_seconds,
        dedupe_key=f"activate:{image.id}",
    )


def reactivate_now(ctx: Context, image: Image) -> None:
    """A re-push of an archived image's exact manifest brings it back at once."""
    image.status = "ACTIVE"
    image.last_activated_at = ctx.now


def update(ctx: Context, repository_name: str, image_id: dict[str, Any], target: str) -> tuple[Image, dict[str, Any]]:
    repo = repositories.get(ctx, repository_name, for_update=True)
    image = lookup.require(ctx, repo, image_id)
    if target == "ARCHIVE":
        archive(ctx, repo, image)
    else:
        restore(ctx, image)
    return image, lookup.echo_id(image, image_id)


@jobs.handler("image_activation")
def _finish_restore(services: Services, payload: dict[str, Any]) -> None:
    with services.unit(Scope(payload["account"], payload["region"]), write=True) as ctx:
        image = ctx.session.get(Image, payload["image"])
        if image is not None and image.status == "ACTIVATING":
            image.status = "ACTIVE"
            image.last_activated_at = ctx.now
