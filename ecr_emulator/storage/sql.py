"""Statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: type, values: dict[str, Any]) -> bool:
    """INSERT a row unless one with the same key exists; True if this call inserted it.

    Concurrent writers on PostgreSQL may race to create the same row (a blob both pushes
    upload, a schedule both job threads start); the loser must not fail its transaction. Whether
    this call inserted is told by RETURNING (psycopg reports no rowcount for such an INSERT).
    """
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    key = list(model.__table__.primary_key.columns)  # type: ignore[attr-defined]
    stmt = module.insert(model).values(**values).on_conflict_do_nothing().returning(*key)
    return session.execute(stmt).first() is not None


def lock_blob(session: Session, digest: str) -> None:
    """Hold ``digest`` against every other transaction touching its bytes until this one ends.

    A blob's bytes are placed (upload commit) and removed (garbage collection, reset) by
    transactions that must not interleave: the remover checks that no row names the blob
    before deleting the file, the placer inserts the row and moves the file in. SQLite's single
    writer already serialises them; PostgreSQL takes a transaction-scoped advisory lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": "blob:" + digest})
