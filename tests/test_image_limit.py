"""A repository's image limit (ECR's quota is 100,000 images; lowered here): a push past it is
refused with LimitExceededException, and every way an image goes makes room again. The count
is kept by the database (triggers on ``images``: storage/models/registry.py), so this also
checks that no insert or delete, whichever statement or cascade makes it, slips past them."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ecr_emulator.core import errors, repositories
from ecr_emulator.core.images import put
from ecr_emulator.core.images.delete import batch_delete
from ecr_emulator.core.naming import Scope
from ecr_emulator.storage.models import Repository
from tests.images import build_image, store_in_process

SCOPE = Scope("123456789012", "us-east-1")
LIMIT = 3


@pytest.fixture
def limited(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(put, "MAX_IMAGES_PER_REPOSITORY", LIMIT)


def _push(services, repo: str, tag: str | None = None):  # type: ignore[no-untyped-def]
    image = build_image()
    with services.unit(SCOPE, write=True) as ctx:
        store_in_process(ctx, repo, image, tag)
    return image


def _count(services, repo: str) -> int:  # type: ignore[no-untyped-def]
    return services.db.run(lambda s: s.scalar(select(Repository.image_count).where(Repository.name == repo)))


def test_a_push_past_the_limit_is_refused_and_a_deleted_image_makes_room(services, limited):
    with services.unit(SCOPE, write=True) as ctx:
        repositories.create(ctx, "app")
        repositories.create(ctx, "other")
    pushed = [_push(services, "app", f"v{i}") for i in range(LIMIT)]
    _push(services, "other")  # another repository's images count for it alone
    with pytest.raises(errors.LimitExceededException) as refused:
        _push(services, "app", "one-too-many")
    assert f"maximum of {LIMIT} images" in refused.value.message
    assert _count(services, "app") == LIMIT  # the refused push left nothing behind

    # retagging a stored manifest adds no image, so the limit does not stop it
    with services.unit(SCOPE, write=True) as ctx:
        store_in_process(ctx, "app", pushed[0], "latest")

    with services.unit(SCOPE, write=True) as ctx:  # BatchDeleteImage
        batch_delete(ctx, "app", [{"imageDigest": pushed[0].digest}])
    _push(services, "app", "fits-again")
    with pytest.raises(errors.LimitExceededException):
        _push(services, "app", "full-again")
    assert (_count(services, "app"), _count(services, "other")) == (LIMIT, 1)
