"""The pull-time writer (core/images/pulls.py), in-process: a note reaches only the image pulled.

Notes are written behind the pulls, up to half a second later. An image deleted meanwhile (or a
registry reset) may free its id for the next image pushed (SQLite reuses the highest id once its
row is gone), and that image must not inherit the pull.
"""

from __future__ import annotations

from sqlalchemy import select

from ecr_emulator.core.images.delete import delete_image
from ecr_emulator.core.naming import Scope
from ecr_emulator.core.repositories import create, get
from ecr_emulator.storage.models import Image
from tests.images import build_image, store_in_process

SCOPE = Scope("123456789012", "us-east-1")


def _push(services, image, tag: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    with services.unit(SCOPE, write=True) as ctx:
        if tag == "first":
            create(ctx, "app")
        store_in_process(ctx, "app", image, tag)
    row = services.db.run(lambda s: s.scalars(select(Image).where(Image.digest == image.digest)).one())
    return row.id, row.digest


def _pulled_at(services, digest: str) -> float | None:  # type: ignore[no-untyped-def]
    return services.db.run(lambda s: s.scalars(select(Image.last_pulled_at).where(Image.digest == digest)).one())


def test_a_note_for_a_deleted_image_does_not_land_on_the_next_one(services):
    pulled = _push(services, build_image(), "first")
    services.pulls._thread = object()  # a writer "runs": notes wait for flush(), as behind a real pull
    services.pulls.note([pulled], 1000.0, "")
    with services.unit(SCOPE, write=True) as ctx:
        delete_image(ctx, get(ctx, "app"), ctx.session.get(Image, pulled[0]))
    second = build_image()
    pushed = _push(services, second, "second")
    assert services.pulls.flush() == 1  # written, and matched nothing
    assert _pulled_at(services, second.digest) is None
    if services.db.engine.dialect.name == "sqlite":
        assert pushed[0] == pulled[0]  # the id was reused: the case this guards against
    services.pulls.note([pushed], 2000.0, "")
    services.pulls.flush()
    assert _pulled_at(services, second.digest) == 2000.0
