"""Statements run on the DBAPI cursor (storage/prepared.py) answer as SQLAlchemy's own execution
does, on the backend under test: the same rows and conversions, the same exception classes (the
retry of units of work depends on them), the same ORM objects."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import bindparam, func, insert, literal, select, update
from sqlalchemy.exc import ArgumentError, IntegrityError, NoResultFound

from ecr_emulator.storage.db import is_retryable
from ecr_emulator.storage.models import Image, Repository
from ecr_emulator.storage.prepared import Prepared, columns, loaded

_REPO = {"account_id": "123456789012", "region": "us-east-1", "created_at": 1.5, "tag_mutability": "MUTABLE",
         "scan_on_push": True, "encryption_type": "AES256", "kms_key": None, "policy_text": None,
         "lifecycle_policy_text": None, "lifecycle_evaluated_at": None, "image_count": 0,
         "tag_mutability_filters": [{"filterType": "WILDCARD", "filter": "v*"}]}
_INSERT = Prepared(insert(Repository).values({k: bindparam(k) for k in (*_REPO, "name")}).returning(Repository.id))
_BY_NAME = Prepared(select(Repository.id, Repository.scan_on_push, Repository.tag_mutability_filters)
                    .where(Repository.name == bindparam("name")))
_FIRST = Prepared(select(Repository.name).order_by(Repository.name).limit(1))


def _insert(session, name: str) -> int:  # type: ignore[no-untyped-def]
    return int(_INSERT.one(session, {**_REPO, "name": name})[0])


def test_rows_and_conversions_are_sqlalchemys(services):
    with services.db.transaction(write=True) as session:
        repo_id = _insert(session, "b")
        _insert(session, "a")
        ours = _BY_NAME.one(session, {"name": "b"})
        theirs = session.connection().execute(_BY_NAME._build, {"name": "b"}).one()  # type: ignore[arg-type]
        assert ours == tuple(theirs) == (repo_id, True, [{"filterType": "WILDCARD", "filter": "v*"}])
        assert ours[1] is True  # SQLite stores 1: the Boolean's result conversion ran
        assert _BY_NAME.first(session, {"name": "absent"}) is None
        with pytest.raises(NoResultFound):
            _BY_NAME.one(session, {"name": "absent"})
        assert _FIRST.scalar(session) == "a"  # LIMIT's own value is bound
        assert _FIRST.all(session) == [("a",)]
        with pytest.raises(ArgumentError):
            _BY_NAME.first(session, {})
    with services.db.transaction() as session:  # committed, read back by SQLAlchemy
        assert session.scalar(select(func.count()).select_from(Repository)) == 2


def test_writes_report_rows_and_run_many_inserts_each(services):
    bump = Prepared(update(Repository).where(Repository.name == bindparam("name"))
                    .values(policy_text=bindparam("text")))
    with services.db.transaction(write=True) as session:
        repo_id = _insert(session, "app")
        assert bump.run(session, {"name": "app", "text": "{}"}) == 1
        assert bump.run(session, {"name": "absent", "text": "{}"}) == 0
        images = Prepared(insert(Image).values({k: bindparam(k) for k in ("repository_id", "digest", "manifest",
                                                                          "media_type", "size", "pushed_at",
                                                                          "status", "annotations")}))
        images.run_many(session, [{"repository_id": repo_id, "digest": f"sha256:{i}", "manifest": b"{}",
                                   "media_type": "m", "size": i, "pushed_at": 2.0, "status": "ACTIVE",
                                   "annotations": {"n": str(i)}} for i in range(3)])
        images.run_many(session, [])
    with services.db.transaction() as session:
        rows = session.execute(select(Image.digest, Image.annotations).order_by(Image.digest)).all()
        assert [tuple(r) for r in rows] == [(f"sha256:{i}", {"n": str(i)}) for i in range(3)]
        assert session.scalar(select(Repository.policy_text)) == "{}"
        assert session.scalar(select(Repository.image_count)) == 3  # the database's triggers ran


def test_defaults_and_literals_fill_what_the_caller_leaves_out(services):
    given = ("account_id", "region", "name", "created_at", "encryption_type")
    bare = Prepared(insert(Repository).values({k: bindparam(k) for k in given}))  # Python-side defaults
    with services.db.transaction(write=True) as session:
        bare.run(session, {**{k: _REPO[k] for k in given if k in _REPO}, "name": "bare"})
        row = Prepared(select(Repository.tag_mutability, Repository.scan_on_push, Repository.image_count,
                              literal(None), literal("x"))
                       .where(Repository.name == "bare")).one(session)
        assert row == ("MUTABLE", False, 0, None, "x")


def test_none_is_stored_as_sqlalchemy_stores_it(services):
    """A JSON column given None holds JSON 'null' (SQLAlchemy's default), not SQL NULL."""
    is_null = Prepared(select(Repository.tag_mutability_filters.is_(None)).where(Repository.name == bindparam("name")))
    with services.db.transaction(write=True) as session:
        _insert(session, "ours")
        session.connection().execute(insert(Repository), {**_REPO, "name": "theirs", "tag_mutability_filters": None})
        _INSERT.one(session, {**_REPO, "name": "ours-none", "tag_mutability_filters": None})
        assert is_null.scalar(session, {"name": "ours-none"}) == is_null.scalar(session, {"name": "theirs"})
        assert _BY_NAME.one(session, {"name": "ours-none"})[2] is None


def test_objects_can_be_built_before_any_orm_use():
    """A process whose first ORM step builds an object in its state (a command that looks a
    repository up, a worker's first request) finds the mappers configured."""
    code = (
        "import tempfile\n"
        "from sqlalchemy.orm import Session\n"
        "from ecr_emulator.storage.models import Repository\n"
        "from ecr_emulator.storage.prepared import persistent\n"
        "assert not Repository.__mapper__.configured\n"
        "repo = persistent(Session(), Repository, {'id': 1, 'name': 'app'})\n"
        "assert repo.name == 'app' and repo.id == 1\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_a_driver_error_is_sqlalchemys_exception_and_retryable(services):
    with services.db.transaction(write=True) as session:
        _insert(session, "app")
    with pytest.raises(IntegrityError) as raised, services.db.transaction(write=True) as session:
        _insert(session, "app")  # the scope's unique name
    assert is_retryable(raised.value)  # the unit of work that raced for the name runs again
    assert raised.value.orig is not None and raised.value.statement == _INSERT._for(services.db.engine.dialect).sql
    with services.db.transaction() as session:  # the failed transaction left nothing
        assert session.scalar(select(func.count()).select_from(Repository)) == 1


def test_in_lists_get_a_parameter_per_item(services):
    named = Prepared(select(Repository.name).where(Repository.name.in_(bindparam("names", expanding=True)),
                                                   Repository.region == bindparam("region"))
                     .order_by(Repository.name))
    with services.db.transaction(write=True) as session:
        for name in ("a", "b", "c"):
            _insert(session, name)
        region = _REPO["region"]
        assert named.all(session, {"names": ["b"], "region": region}) == [("b",)]
        assert named.all(session, {"names": ["c", "a", "x"], "region": region}) == [("a",), ("c",)]
        assert named.all(session, {"names": ("b", "c"), "region": "eu-west-1"}) == []
        assert named.all(session, {"names": ["b"], "region": region}) == [("b",)]  # the one-item SQL again
        twice = Prepared(select(Repository.name).where(Repository.name.in_(bindparam("names", expanding=True))
                                                       | Repository.kms_key.in_(bindparam("names", expanding=True)))
                         .order_by(Repository.name))
        assert twice.all(session, {"names": ["a", "c"]}) == [("a",), ("c",)]  # one list, used twice
        with pytest.raises(ValueError):
            named.all(session, {"names": [], "region": region})
    with services.db.transaction() as session:
        literal = Prepared(select(Repository.id).where(Repository.name == "b").limit(bindparam("n", literal_execute=True)))
        with pytest.raises(TypeError):
            literal.all(session, {"n": 1})


def test_loaded_objects_are_the_sessions(services):
    every = Prepared(select(*columns(Repository)).where(Repository.name == bindparam("name")))
    with services.db.transaction(write=True) as session:
        _insert(session, "app")
    with services.db.transaction(write=True) as session:
        assert loaded(session, Repository, every.first(session, {"name": "absent"})) is None
        repo = loaded(session, Repository, every.one(session, {"name": "app"}))
        assert repo is not None and repo in session and not session.dirty and repo.tag_mutability_filters[0]["filter"] == "v*"
        assert repo.tags == []  # relationships load when read
        assert loaded(session, Repository, every.one(session, {"name": "app"})) is repo
        assert session.scalars(select(Repository)).one() is repo  # the ORM finds the same object
        repo.kms_key = "changed"  # and flushes its changes
        pending = Repository(**{**_REPO, "name": "pending", "tag_mutability_filters": None})
        session.add(pending)
        assert every.object(session, Repository, {"name": "pending"}) is pending  # flushed first, as a query does
        assert every.objects(session, Repository, {"name": "app"}) == [repo]
    with services.db.transaction() as session:
        assert session.scalar(select(Repository.kms_key).where(Repository.name == "app")) == "changed"
