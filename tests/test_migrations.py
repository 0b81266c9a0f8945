"""Schema migrations: the models and the migration chain agree, and data directories upgrade in place."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from ecr_emulator.storage import migrate
from ecr_emulator.storage.db import Database
from ecr_emulator.storage.models import Base


def test_migrations_produce_exactly_the_models(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    migrate.upgrade(db)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], f"models changed without a migration: {diff}"


def test_every_revision_upgrades_and_downgrades_step_by_step(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'steps.db'}")
    cfg = migrate.alembic_config(db)
    revisions = list(reversed(list(ScriptDirectory.from_config(cfg).walk_revisions())))
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        for rev in revisions:
            command.upgrade(cfg, rev.revision)
        command.downgrade(cfg, "base")
        command.upgrade(cfg, "head")
    assert migrate.current_revision(db) == revisions[-1].revision


def test_server_upgrades_an_old_data_directory(tmp_path):
    from tests.conftest import make_client
    from tests.server import start_server

    data = tmp_path / "old"
    data.mkdir()
    db = Database(f"sqlite:///{data / 'ecr.db'}")
    cfg = migrate.alembic_config(db)
    first = list(reversed(list(ScriptDirectory.from_config(cfg).walk_revisions())))[0].revision
    migrate.upgrade(db, first)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO repositories (account_id, region, name, created_at, tag_mutability, scan_on_push, "
            "encryption_type) VALUES ('123456789012', 'us-east-1', 'from-old', 1700000000, 'MUTABLE', 0, 'AES256')"
        )
    db.dispose()
    live = start_server(data, env={"ECR_EMULATOR_DATABASE_URL": f"sqlite:///{data / 'ecr.db'}"})
    try:
        repos = make_client(live).describe_repositories()["repositories"]
        assert [r["repositoryName"] for r in repos] == ["from-old"]
    finally:
        live.stop()
    assert migrate.current_revision(Database(f"sqlite:///{data / 'ecr.db'}")) == \
        ScriptDirectory.from_config(cfg).get_current_head()


def test_head_names_the_newest_migration(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'h.db'}")
    assert migrate.head_revision() == ScriptDirectory.from_config(migrate.alembic_config(db)).get_current_head()


def test_an_empty_database_is_created_from_the_models_as_the_migrations_would(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'fast.db'}")
    assert migrate.prepare(db) == "created"
    assert migrate.current_revision(db) == migrate.head_revision()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    assert migrate.prepare(db) == "current"
    migrate.upgrade(db)  # alembic agrees there is nothing left to do
    assert migrate.current_revision(db) == migrate.head_revision()


def test_an_old_database_goes_through_the_migrations(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    migrate.upgrade(db, "0001")
    assert migrate.prepare(db) == "upgraded"
    assert migrate.current_revision(db) == migrate.head_revision()


def test_image_counts_are_taken_over_by_the_migration_that_adds_them(tmp_path):
    """0009 counts the images a repository already holds; its triggers count every later one."""
    db = Database(f"sqlite:///{tmp_path / 'count.db'}")
    migrate.upgrade(db, "0008")
    with db.engine.begin() as conn:
        for name in ("two", "none"):
            conn.exec_driver_sql(
                "INSERT INTO repositories (account_id, region, name, created_at, tag_mutability, scan_on_push, "
                f"encryption_type) VALUES ('123456789012', 'us-east-1', '{name}', 1700000000, 'MUTABLE', 0, 'AES256')")
        for n in range(2):
            conn.exec_driver_sql(
                "INSERT INTO images (repository_id, digest, manifest, media_type, size, pushed_at, status) "
                f"SELECT id, 'sha256:{n}', x'7b7d', 'application/json', 2, 1700000000, 'ACTIVE' "
                "FROM repositories WHERE name = 'two'")
    assert migrate.prepare(db) == "upgraded"

    def counts() -> dict[str, int]:
        with db.engine.connect() as conn:
            return dict(conn.exec_driver_sql("SELECT name, image_count FROM repositories").all())

    assert counts() == {"two": 2, "none": 0}
    with db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM images WHERE digest = 'sha256:0'")
        conn.exec_driver_sql(
            "INSERT INTO images (repository_id, digest, manifest, media_type, size, pushed_at, status) "
            "SELECT id, 'sha256:9', x'7b7d', 'application/json', 2, 1700000000, 'ACTIVE' FROM repositories "
            "WHERE name = 'none'")
    assert counts() == {"two": 1, "none": 1}
