"""The blob checks of every push and pull (a blob HEAD or GET, BatchCheckLayerAvailability) do not
read the repository's history: every build of an image names the same base layers, so anything
that visits each image naming a blob grows with every push. Measured in SQLite virtual-machine
steps (its progress handler), which count the rows a statement visits and do not depend on the
machine's speed or load."""

from __future__ import annotations

import os

import pytest

from ecr_emulator.core import layers, repositories
from ecr_emulator.core.naming import Scope
from tests.images import build_image, random_layer, store_in_process

pytestmark = pytest.mark.skipif(os.environ.get("ECR_TEST_BACKEND") == "postgres",
                                reason="counts SQLite's virtual-machine steps")

SCOPE = Scope("123456789012", "us-east-1")


def _push_builds(services, base: bytes, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` builds of one image: each its own top layer over the shared ``base``."""
    with services.unit(SCOPE, write=True) as ctx:
        for _ in range(count):
            store_in_process(ctx, "app", build_image([base, random_layer(256)]))


def _steps(services, digest: str) -> int:  # type: ignore[no-untyped-def]
    """SQLite steps of an availability check and a blob read of ``digest``."""
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    with services.unit(SCOPE) as ctx:
        sqlite = ctx.session.connection().connection.dbapi_connection
        sqlite.set_progress_handler(tick, 1)
        try:
            found, failures = layers.check_availability(ctx, "app", [digest])
            pulled = layers.pull_blob(ctx, "app", digest)
        finally:
            sqlite.set_progress_handler(None, 1)
    assert not failures and found[0]["layerAvailability"] == "AVAILABLE" and pulled.readable
    return steps[0]


def test_blob_checks_do_not_grow_with_the_builds_naming_the_blob(services):
    with services.unit(SCOPE, write=True) as ctx:
        repositories.create(ctx, "app")
    base = random_layer(256)
    digest = build_image([base]).blobs[1].digest
    _push_builds(services, base, 5)
    few = _steps(services, digest)
    _push_builds(services, base, 120)
    many = _steps(services, digest)
    assert many < few * 1.5, (few, many)  # 224 and 224; reading each build's row took 416, then 5,936
