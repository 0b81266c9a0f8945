"""Statements whose spelling differs between SQLite and PostgreSQL, and inserts for hot paths.

Statements here are built once per table, set of columns and dialect, and run as ``Prepared``
statements (storage/prepared.py): building one with SQLAlchemy's expression language costs
more than running it (about 0.3 ms here), and an ORM flush of a handful of rows cost about
three times the plain INSERTs.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from sqlalchemy import bindparam, insert, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ecr_emulator.storage.prepared import Prepared, persistent

M = TypeVar("M")


def _values(keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: bindparam(key) for key in keys}


@functools.cache
def _insert_ignore(model: type, keys: tuple[str, ...]) -> Prepared:
    def build(dialect: str) -> Any:
        module = postgresql if dialect == "postgresql" else sqlite
        key = list(model.__table__.primary_key.columns)  # type: ignore[attr-defined]
        return module.insert(model).values(_values(keys)).on_conflict_do_nothing().returning(*key)
    return Prepared(build)


def insert_ignore(session: Session, model: type, values: dict[str, Any]) -> bool:
    """INSERT a row unless one with the same key exists; True if this call inserted it.

    Concurrent writers on PostgreSQL may race to create the same row (a blob both pushes
    upload, a schedule both job threads start); the loser must not fail its transaction. Whether
    this call inserted is told by RETURNING (psycopg reports no rowcount for such an INSERT).
    """
    return _insert_ignore(model, tuple(values)).first(session, values) is not None


@functools.cache
def _insert(model: type, keys: tuple[str, ...], returning: bool = False) -> Prepared:
    statement = insert(model).values(_values(keys))
    if returning:
        statement = statement.returning(*model.__table__.primary_key.columns)  # type: ignore[attr-defined]
    return Prepared(statement)


def insert_rows(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """INSERT ``rows`` (each naming the same columns, every column it sets) in one driver call,
    without the ORM. Pending ORM changes are flushed first, so that statements run in the order
    they were made."""
    if rows:
        session.flush()
        _insert(model, tuple(rows[0])).run_many(session, rows)


def insert_loaded(session: Session, model: type[M], values: dict[str, Any]) -> M:
    """INSERT one row and return it as a persistent ORM object of ``session``, as if just loaded.

    ``values`` must give every column but an autoincremented primary key, which is filled in;
    relationships are left unloaded (they load from the database when first read). Pending ORM
    changes are flushed first, so that statements run in the order the caller made them."""
    session.flush()
    key = _insert(model, tuple(values), returning=True).one(session, values)
    columns = model.__table__.primary_key.columns  # type: ignore[attr-defined]
    return persistent(session, model, {**values, **{c.key: v for c, v in zip(columns, key, strict=True)}})


def lock_blob(session: Session, digest: str) -> None:
    """Hold ``digest`` against every other transaction touching its bytes until this one ends.

    A blob's bytes are placed (upload commit) and removed (garbage collection, reset) by
    transactions that must not interleave: the remover checks that no row names the blob
    before deleting the file, the placer inserts the row and moves the file in. SQLite's single
    writer already serialises them; PostgreSQL takes a transaction-scoped advisory lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": "blob:" + digest})
