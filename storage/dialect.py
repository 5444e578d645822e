"""Every difference between SQLite and PostgreSQL that the SQL code meets, in one place.

- Row locks: SQLite has none (every write transaction starts with BEGIN IMMEDIATE, so it is the only
  writer); PostgreSQL takes `FOR UPDATE` (or `FOR UPDATE SKIP LOCKED`) on the rows read.
- `INSERT ... ON CONFLICT`: each dialect builds its own statement; `per_dialect` builds both once.
- Running a built statement: on SQLite straight on the sqlite3 cursor (SQLAlchemy's execution
  machinery costs most of a step there), elsewhere through SQLAlchemy; inserting many rows: one driver
  call a row on SQLite, one statement for all on PostgreSQL (one round trip).
- The write-ahead log: a SQLite transaction that deleted something asks for a checkpoint
  (storage.db truncates the -wal file after the commit); PostgreSQL has no such file.

Nothing here knows a table: the SQL implementation (storage.writes, storage.outbox) uses these.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Insert, Select, Table, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage import pg

Q = TypeVar("Q", bound=Select[Any])

SQLITE = "sqlite"
POSTGRESQL = "postgresql"

CHECKPOINT_WANTED = "reportbot.checkpoint"  # a flag in the driver connection's info (see request_checkpoint)


def request_checkpoint(conn: Connection) -> None:
    """Ask for the write-ahead log to be checkpointed and truncated once this transaction is committed,
    because it deleted something (SQLite; PostgreSQL has no such file, see docs/security.md)."""
    if conn.dialect.name == SQLITE:
        conn.info[CHECKPOINT_WANTED] = True


def locked(query: Q, name: str, *, skip_locked: bool = False) -> Q:
    """The query, locking the rows it reads until the transaction ends where the database can (`name`
    is the dialect's name). With `skip_locked`, rows another transaction holds are passed over."""
    if name == POSTGRESQL:
        return query.with_for_update(skip_locked=skip_locked)
    return query


def locked_in(query: Q, s: AsyncSession) -> Q:
    """`locked` for a query run on an async session."""
    return locked(query, s.get_bind().dialect.name)


def insert(name: str, table: Table | type[Any]) -> Any:
    """An INSERT of the dialect that supports ON CONFLICT (DO NOTHING, DO UPDATE)."""
    return (postgresql.insert if name == POSTGRESQL else sqlite.insert)(table)


def per_dialect(build: Callable[[str], Any]) -> dict[str, Any]:
    """A statement built once for each dialect, looked up by `conn.dialect.name`."""
    return {name: build(name) for name in (SQLITE, POSTGRESQL)}


@dataclass(frozen=True)
class _Prepared:
    """A built statement compiled once for SQLite's driver: its SQL, and its parameters in order with
    each type's own conversion (as SQLAlchemy would apply it)."""

    sql: str
    names: tuple[str, ...]
    convert: tuple[Callable[[Any], Any] | None, ...]
    fixed: dict[str, Any]  # the values of parameters the statement carries itself

    def args(self, values: dict[str, Any]) -> tuple[Any, ...]:
        if self.fixed:
            values = {**self.fixed, **values}
        return tuple(
            v if f is None else f(v)
            for v, f in zip((values[n] for n in self.names), self.convert, strict=True)
        )


# By the statement's identity, the dialect and the parameter names; the statement is kept with it, so that
# its id cannot be reused by another object. Only statements built once at import are passed.
_prepared: dict[tuple[int, str, frozenset[str]], tuple[Any, _Prepared | None]] = {}


def _prepare(stmt: Any, conn: Connection, keys: frozenset[str]) -> _Prepared | None:
    """The statement for the raw driver, or None where SQLAlchemy must run it itself: a column default
    computed in Python, an expanding IN, a returned column that needs converting, a parameter without
    a value."""
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=sorted(keys))
    if not _fits_the_driver(stmt, compiled, dialect):
        return None
    names = tuple(compiled.positiontup)
    # A value the statement carries itself (a constant such as `attempts + 1`) is passed as it is.
    fixed = {n: compiled.binds[n] for n in names if n not in keys}
    if any(b.required or b.callable is not None for b in fixed.values()):
        return None
    # The dialect's own form of each type (SQLite's DATETIME writes its fixed text format; the generic
    # DateTime under a TypeDecorator would hand the driver an aware datetime to print as it likes).
    convert = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
    return _Prepared(compiled.string, names, convert, {n: b.value for n, b in fixed.items()})


def _fits_the_driver(stmt: Any, compiled: Any, dialect: Any) -> bool:
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.positiontup is None:
        return False
    if compiled.post_compile_params:  # an expanding IN: SQLAlchemy renders it per call
        return False
    return all(
        c.type.dialect_impl(dialect).result_processor(dialect, None) is None for c in stmt.exported_columns
    )


def _prepared_for(conn: Connection, stmt: Any, values: dict[str, Any]) -> _Prepared | None:
    key = (id(stmt), conn.dialect.name, frozenset(values))
    found = _prepared.get(key)
    if found is None:
        found = _prepared[key] = (stmt, _prepare(stmt, conn, key[2]))
    return found[1]


def rows(conn: Connection, stmt: Any, values: dict[str, Any]) -> list[Sequence[Any]]:
    """Run one built statement with one set of values and return its rows (if it returns any).

    This skips SQLAlchemy's execution machinery (on SQLite about 20 microseconds a statement against 3
    on the driver, most of a step's database cost; on PostgreSQL about as much again, beside the round
    trip): the statement is compiled once per dialect and set of parameter names and run on the
    driver's connection in the same transaction (storage.pg for PostgreSQL's asyncpg).
    """
    prepared = _prepared_for(conn, stmt, values)
    if prepared is not None:
        if conn.dialect.name == SQLITE:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(prepared.sql, prepared.args(values))
                return list(cursor.fetchall())
            finally:
                cursor.close()
        if conn.dialect.driver == "asyncpg":
            return pg.fetch(conn, prepared.sql, prepared.args(values))
    result = conn.execute(stmt, values)
    return list(result) if result.returns_rows else []


def insert_all(conn: Connection, stmt: Any, values: list[dict[str, Any]]) -> list[Sequence[Any]]:
    """Insert rows in order and return what the statement returns for them, in the same order. On
    SQLite one driver call a row (cheaper there than SQLAlchemy's one statement for all); on PostgreSQL
    one multi-row statement for all, so that it keeps a single round trip."""
    if conn.dialect.name == SQLITE:
        return [found for row in values for found in rows(conn, stmt, row)]
    if not values:
        return []
    if len(values) == 1:
        return rows(conn, stmt, values[0])
    if conn.dialect.driver == "asyncpg" and _one_shape(stmt, values):
        return _insert_many(conn, stmt, values)
    result = conn.execute(stmt, values)
    return list(result) if result.returns_rows else []


MULTI_MAX = 32  # rows in one multi-row INSERT built for asyncpg; more go through SQLAlchemy's executemany


def _insert_many(conn: Connection, stmt: Any, values: list[dict[str, Any]]) -> list[Sequence[Any]]:
    keys = tuple(sorted(values[0]))
    multi = _multi_row(stmt, keys, len(values))
    return rows(conn, multi, {f"{k}__{i}": v[k] for i, v in enumerate(values) for k in keys})


def _one_shape(stmt: Any, values: list[dict[str, Any]]) -> bool:
    """A plain INSERT of at most MULTI_MAX rows that all give the same columns."""
    keys = set(values[0])
    return type(stmt) is Insert and len(values) <= MULTI_MAX and all(set(v) == keys for v in values)


# A multi-row form of a built INSERT, by its identity, its column names and how many rows (the INSERT is
# kept with it, as in _prepared).
_multi: dict[tuple[int, tuple[str, ...], int], tuple[Any, Any]] = {}


def _multi_row(stmt: Any, keys: tuple[str, ...], count: int) -> Any:
    """A plain `INSERT ... [RETURNING ...]` as `INSERT ... VALUES (...), (...) [RETURNING ...]` for
    `count` rows, parameters named `<key>__<i>`. PostgreSQL inserts the VALUES rows in their order (a
    serial id follows it) and RETURNING lists them in that order."""
    key = (id(stmt), keys, count)
    found = _multi.get(key)
    if found is None:
        columns = stmt.table.c
        multi = stmt.table.insert().values(
            [{k: bindparam(f"{k}__{i}", type_=columns[k].type) for k in keys} for i in range(count)]
        )
        if stmt.exported_columns:  # what the INSERT returns (its sort by parameter order is the VALUES')
            multi = multi.returning(*stmt.exported_columns)
        found = _multi[key] = (stmt, multi)
    return found[1]
