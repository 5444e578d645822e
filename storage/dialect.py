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

from sqlalchemy import Connection, Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

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

    def args(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(
            v if f is None else f(v)
            for v, f in zip((values[n] for n in self.names), self.convert, strict=True)
        )


# By the statement's identity and the parameter names; the statement is kept with it, so that its id
# cannot be reused by another object. Only statements built once at import are passed.
_prepared: dict[tuple[int, frozenset[str]], tuple[Any, _Prepared | None]] = {}


def _prepare(stmt: Any, conn: Connection, keys: frozenset[str]) -> _Prepared | None:
    """The statement for the raw driver, or None where SQLAlchemy must run it itself: a column default
    computed in Python, or a returned column that needs converting."""
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=sorted(keys))
    if compiled.insert_prefetch or compiled.update_prefetch or compiled.positiontup is None:
        return None
    if any(
        c.type.dialect_impl(dialect).result_processor(dialect, None) is not None
        for c in stmt.exported_columns
    ):
        return None
    names = tuple(compiled.positiontup)
    if not set(names) <= keys:
        return None
    # The dialect's own form of each type (SQLite's DATETIME writes its fixed text format; the generic
    # DateTime under a TypeDecorator would hand the driver an aware datetime to print as it likes).
    convert = tuple(compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names)
    return _Prepared(compiled.string, names, convert)


def rows(conn: Connection, stmt: Any, values: dict[str, Any]) -> list[Sequence[Any]]:
    """Run one built statement with one set of values and return its rows (if it returns any).

    On SQLite this skips SQLAlchemy's execution machinery (about 20 microseconds a statement against 3
    on the driver, most of a step's database cost): the statement is compiled once per set of parameter
    names and run on the driver's cursor in the same transaction. Elsewhere SQLAlchemy runs it.
    """
    if conn.dialect.name == SQLITE:
        key = (id(stmt), frozenset(values))
        if key not in _prepared:
            _prepared[key] = (stmt, _prepare(stmt, conn, key[1]))
        prepared = _prepared[key][1]
        if prepared is not None:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(prepared.sql, prepared.args(values))
                return list(cursor.fetchall())
            finally:
                cursor.close()
    result = conn.execute(stmt, values)
    return list(result) if result.returns_rows else []


def insert_all(conn: Connection, stmt: Any, values: list[dict[str, Any]]) -> list[Sequence[Any]]:
    """Insert rows in order and return what the statement returns for them, in the same order. On
    SQLite one driver call a row (cheaper there than SQLAlchemy's one statement for all); elsewhere one
    statement for all, so that PostgreSQL keeps a single round trip."""
    if conn.dialect.name == SQLITE:
        return [found for row in values for found in rows(conn, stmt, row)]
    if not values:
        return []
    result = conn.execute(stmt, values)
    return list(result) if result.returns_rows else []
