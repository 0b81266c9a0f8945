"""Statements of the hot paths, compiled once per dialect and run on the DBAPI cursor.

Why: running a cached Core statement through SQLAlchemy's ``Connection.execute`` cost about
57 us here (execution context, result object, events), against 3.4 us for the same SQL on the
sqlite3 cursor; a PutImage runs nine statements, and SQLAlchemy's Python was half of its time.
A ``Prepared`` statement keeps SQLAlchemy for what it is good at (building and compiling the
SQL for each dialect, the column types' conversions) and skips the per-call machinery.

What stays as SQLAlchemy does it:
- The statement runs on the connection, and in the transaction, of the caller's session.
- Parameters go through the column types' bind conversions (JSON, for one), results through
  their result conversions, exactly the functions SQLAlchemy itself would call.
- A driver error is raised as the ``sqlalchemy.exc`` exception SQLAlchemy raises for it
  (``IntegrityError``, ``OperationalError``...), with the driver's exception as ``orig``: the
  retry of a unit of work that met a concurrent writer (``db.is_retryable``) sees no difference.
  A lost connection invalidates the pooled connection, as SQLAlchemy does.

Expanding ``IN`` parameters get one placeholder per item (the SQL kept per list length); an
empty list is refused, as the caller knows the answer without asking. Not supported (refused
when the statement is compiled, so misuse shows at once in any test): literal-execute
parameters, bind names that need escaping, driver parameter styles other than ``?``,
``%(name)s`` and ``:name``. Pending ORM changes are not flushed first (as with
``session.connection().execute``); callers that mix ORM writes flush themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import exc as sa_exc
from sqlalchemy import inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, configure_mappers, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict
from sqlalchemy.orm.instrumentation import manager_of_class as model_manager
from sqlalchemy.sql import ClauseElement

M = TypeVar("M")
Row = tuple[Any, ...]
_Processor = Callable[[Any], Any] | None


class _Compiled:
    """One statement as one dialect runs it."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        binds = compiled.binds
        self.expanding = {name for name, bind in binds.items() if bind.expanding}
        if compiled.literal_execute_params or compiled.escaped_bind_names \
                or dialect.paramstyle not in ("qmark", "pyformat", "named"):
            raise TypeError("a Prepared statement cannot have literal-execute or escaped parameters, "
                            f"nor run with the {dialect.paramstyle} parameter style")
        self.sql = compiled.string
        self.positional = compiled.positional
        self.template = "?" if dialect.paramstyle == "qmark" else "%({})s" if dialect.paramstyle == "pyformat" else ":{}"
        names = list(compiled.positiontup or []) if self.positional else list(binds)
        defaults = {**{c.key: c.onupdate for c in compiled.update_prefetch if c.onupdate is not None},
                    **{c.key: c.default for c in compiled.insert_prefetch if c.default is not None}}
        # (name, where its value comes from when the caller gives none, bind conversion), in order
        self.params: list[tuple[str, Callable[[], Any] | None, _Processor]] = [
            (name, _fallback(binds[name], defaults.get(name)), binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names]
        self.expanded: dict[tuple[int, ...], str] = {}  # the SQL for each length of the expanding lists
        self.dialect = dialect
        self.types = [c.type.dialect_impl(dialect) for c in statement.exported_columns]  # a DML's RETURNING
        self.results: list[_Processor] | None = None  # the result conversions, known at the first rows
        self.converts = True

    def bind(self, values: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL to run and its parameters, in the driver's form."""
        out: list[Any] = []
        names: list[str] = []
        lengths: list[int] = []
        for name, fallback, process in self.params:
            if name in values:
                value = values[name]
            elif fallback is not None:
                value = fallback()
            else:
                raise sa_exc.ArgumentError(f"no value for the statement's parameter {name!r}")
            if name in self.expanding:  # IN (...): one parameter per item
                items = list(value)
                if not items:
                    raise ValueError(f"the list for {name!r} is empty: answer without running the statement")
                lengths.append(len(items))
                names.extend(f"{name}_{i}" for i in range(1, len(items) + 1))
                out.extend(v if process is None else process(v) for v in items)
            else:
                names.append(name)  # a conversion sees None too (JSON stores it as 'null')
                out.append(value if process is None else process(value))
        sql = self._sql(tuple(lengths)) if lengths else self.sql
        return sql, tuple(out) if self.positional else dict(zip(names, out, strict=True))

    def _sql(self, lengths: tuple[int, ...]) -> str:
        sql = self.expanded.get(lengths)
        if sql is None:
            sql = self.sql
            expanding = [name for name, _, _ in self.params if name in self.expanding]
            for name, n in zip(expanding, lengths, strict=True):
                marks = ", ".join(self.template.format(f"{name}_{i}") for i in range(1, n + 1))
                # positional: one token per occurrence, in order; named: the name's every use
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", marks, 1 if self.positional else -1)
            if len(self.expanded) < 64:
                self.expanded[lengths] = sql
        return sql

    def rows(self, cursor: Any, many: bool) -> list[Row]:
        """The cursor's rows (all of them, or the first), through the columns' result conversions.
        Those are chosen by the type the driver reports for each column (psycopg's numeric
        types differ), so they are settled when the statement first returns rows."""
        got = cursor.fetchall() if many else cursor.fetchmany(1)
        if self.results is None:
            codes = [d[1] for d in cursor.description or ()]
            self.results = [t.result_processor(self.dialect, code) for t, code in zip(self.types, codes, strict=True)]
            self.converts = any(p is not None for p in self.results)
        if not self.converts:
            return [tuple(row) for row in got]
        return [tuple(v if p is None or v is None else p(v) for p, v in zip(self.results, row, strict=True))
                for row in got]


def _fallback(bind: Any, default: Any) -> Callable[[], Any] | None:
    """A parameter's value when the caller gives none: the column's Python-side default (an
    INSERT leaving the column out), else the statement's own literal (LIMIT 1, status =
    'ACTIVE', a NULL); None for a parameter the caller must give."""
    if default is not None:
        if default.is_callable:
            return lambda: default.arg(None)  # SQLAlchemy wraps it to take an execution context
        if default.is_scalar:
            return lambda: default.arg
    if bind.callable is not None or not bind.required:
        return lambda: bind.effective_value
    return None


class Prepared:
    """A Core statement run on the DBAPI cursor of a session's connection (see the module text).

    ``build`` is the statement, or a function of the dialect's name giving it (for statements
    spelled differently on SQLite and PostgreSQL)."""

    def __init__(self, build: ClauseElement | Callable[[str], ClauseElement]) -> None:
        self._build = build
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            statement = self._build if isinstance(self._build, ClauseElement) else self._build(dialect.name)
            compiled = self._compiled[dialect.name] = _Compiled(statement, dialect)
        return compiled

    def all(self, session: Session, values: Mapping[str, Any] | None = None) -> list[Row]:
        return self._run(session, values, lambda cursor, compiled: compiled.rows(cursor, many=True))  # type: ignore[no-any-return]

    def first(self, session: Session, values: Mapping[str, Any] | None = None) -> Row | None:
        rows = self._run(session, values, lambda cursor, compiled: compiled.rows(cursor, many=False))
        return rows[0] if rows else None

    def one(self, session: Session, values: Mapping[str, Any] | None = None) -> Row:
        row = self.first(session, values)
        if row is None:
            raise sa_exc.NoResultFound("No row was found when one was required")
        return row

    def scalar(self, session: Session, values: Mapping[str, Any] | None = None) -> Any:
        row = self.first(session, values)
        return None if row is None else row[0]

    def objects(self, session: Session, model: type[M], values: Mapping[str, Any] | None = None) -> list[M]:
        """The ORM objects of ``model`` for the rows of a SELECT of its ``columns``, as an ORM query
        returns them: pending changes flushed first, the session's own object for a row it holds."""
        session.flush()
        return [loaded(session, model, row) for row in self.all(session, values)]  # type: ignore[misc]

    def object(self, session: Session, model: type[M], values: Mapping[str, Any] | None = None) -> M | None:
        """The first of ``objects``, or None."""
        session.flush()
        return loaded(session, model, self.first(session, values))

    def run(self, session: Session, values: Mapping[str, Any] | None = None) -> int:
        """Run a statement that returns no rows; the number of rows it touched."""
        return self._run(session, values, lambda cursor, _: int(cursor.rowcount))  # type: ignore[no-any-return]

    def run_many(self, session: Session, rows: Iterable[Mapping[str, Any]]) -> None:
        """Run a statement that returns no rows once per parameter set, in one driver call."""
        connection = session.connection()
        compiled = self._for(connection.dialect)
        bound = [compiled.bind(row) for row in rows]
        if bound:
            sql, params = bound[0][0], [p for _, p in bound]
            if any(other != sql for other, _ in bound):
                raise TypeError("run_many needs one statement: lists of different lengths were given")
            _call(connection, sql, params, lambda cursor: cursor.executemany(sql, params))

    def _run(self, session: Session, values: Mapping[str, Any] | None,
             then: Callable[[Any, _Compiled], Any]) -> Any:
        connection = session.connection()
        compiled = self._for(connection.dialect)
        sql, params = compiled.bind(values or {})

        def execute(cursor: Any) -> Any:
            cursor.execute(sql, params)
            return then(cursor, compiled)
        return _call(connection, sql, params, execute)


def _call(connection: Any, sql: str, params: Any, work: Callable[[Any], Any]) -> Any:
    """``work(cursor)`` on a cursor of ``connection``'s DBAPI connection (running the statement
    and reading its rows), then the cursor closed; a driver error raised as SQLAlchemy raises it."""
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()
    try:
        return work(cursor)
    except dialect.loaded_dbapi.Error as error:
        lost = dialect.is_disconnect(error, dbapi_connection, cursor)
        if lost:
            connection.invalidate(error)
        raise sa_exc.DBAPIError.instance(sql, params, error, dialect.loaded_dbapi.Error,
                                         connection_invalidated=lost, dialect=dialect) from error
    finally:
        cursor.close()


def columns(model: type) -> list[Any]:
    """Every column of ``model``'s table, in order: select these to load ORM objects with ``loaded``."""
    return list(model.__table__.columns)  # type: ignore[attr-defined]


@functools.cache
def _attributes(model: type) -> tuple[Any, list[str]]:
    mapper = inspect(model)
    return mapper, [mapper.get_property_by_column(c).key for c in columns(model)]


def loaded(session: Session, model: type[M], row: Row | None) -> M | None:
    """The ORM object of ``model`` for a row of its ``columns`` just read, as a query would
    return it: the session's own object when it already holds this row, else a new persistent
    object with the row's values and no pending changes. None for no row. (``Prepared.objects``
    reads rows and makes them objects, flushing first as a query does.)"""
    if row is None:
        return None
    mapper, keys = _attributes(model)
    values = dict(zip(keys, row, strict=True))
    key = mapper.identity_key_from_primary_key([values[k] for k in _primary_keys(model)])
    existing = session.identity_map.get(key)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    return persistent(session, model, values)


def persistent(session: Session, model: type[M], values: dict[str, Any]) -> M:
    """A new ORM object of ``model`` holding ``values`` (attribute -> value, the primary key
    included) as if just loaded from its row, added to ``session``: no pending changes, and
    attributes not given (relationships) load when first read.

    The values are put into the object's state directly, as SQLAlchemy's own loading does,
    rather than through the mapped class's constructor: its instrumented attribute events cost
    half of an object's 66 us here."""
    obj = _manager(model).new_instance()
    instance_dict(obj).update(values)
    make_transient_to_detached(obj)  # the identity key from the values; all of them committed
    session.add(obj)
    return obj  # type: ignore[no-any-return]


@functools.cache
def _manager(model: type) -> Any:
    """The class manager that builds ``model``'s objects, the mappers configured first: until
    they are (the first ORM query or constructor call does it), attributes have no
    implementation and an object built in its state has no identity."""
    configure_mappers()
    return model_manager(model)


@functools.cache
def _primary_keys(model: type) -> list[str]:
    mapper = inspect(model)
    return [mapper.get_property_by_column(c).key for c in mapper.primary_key]
