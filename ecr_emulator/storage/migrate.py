"""Schema migrations (Alembic), applied in place at start-up so old data directories upgrade.

``prepare`` is what start-up calls. It does no Alembic work at all in the two common cases,
because importing Alembic and replaying every migration was a large part of start-up time: a
database already at the newest revision is left alone, and an empty database gets the models'
tables (``create_all``) stamped at the newest revision in one transaction. Only a database at
an older revision goes through ``alembic upgrade``. ``tests/test_migrations.py`` checks that
``head_revision`` agrees with Alembic and that both paths produce the same schema.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select

from ecr_emulator.storage.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"

# Alembic's own bookkeeping table, declared as Alembic creates it.
VERSION_TABLE = Table(
    "alembic_version",
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


@functools.cache
def head_revision() -> str:
    """The newest revision under migrations/versions, read from the files' ``revision`` and
    ``down_revision`` lines (importing Alembic to ask it costs more than the whole start-up
    should); Alembic decides when the history is not a single line."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text()
        revision = re.search(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
        parent = re.search(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", text, re.M)
        if revision is None or parent is None:
            continue
        revisions.add(revision[1])
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", parent[1]))
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def alembic_config(db: Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    from alembic import command

    cfg = alembic_config(db)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def prepare(db: Database) -> str:
    """Bring the schema to the newest revision the cheapest way; returns what was done."""
    head = head_revision()
    if _stored_revision(db) == head:
        return "current"

    def create(session) -> bool:  # type: ignore[no-untyped-def]
        conn = session.connection()
        if inspect(conn).get_table_names():  # someone else got there first, or an old schema
            return False
        from ecr_emulator.storage.models import Base

        Base.metadata.create_all(conn)
        VERSION_TABLE.create(conn)
        conn.execute(VERSION_TABLE.insert().values(version_num=head))
        return True

    if db.run(create, write=True):
        return "created"
    if _stored_revision(db) == head:
        return "current"
    upgrade(db)
    return "upgraded"


def _stored_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE.name):
            return None
        return conn.execute(select(VERSION_TABLE.c.version_num)).scalar()


def current_revision(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
