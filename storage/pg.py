"""PostgreSQL's hot statements on the asyncpg connection itself, inside the transaction SQLAlchemy holds.

A statement run through SQLAlchemy on the async engine costs its execution machinery (context, cursor
adapter, result) besides the round trip; the step's built statements (storage.dialect.rows) skip it:
compiled once, they go to `asyncpg.Connection.fetch`, which keeps them prepared on each connection. It
runs in the same transaction: the one SQLAlchemy began on this connection (begun here if no statement
did yet, exactly as SQLAlchemy's adapter begins it), so commit, rollback and savepoints stay SQLAlchemy's.

Errors come back as SQLAlchemy's (`sqlalchemy.exc.DBAPIError` and its kinds, parameters hidden), and a
connection found closed is invalidated, as SQLAlchemy does for its own statements. `begin` sends BEGIN
before the work runs, so that a connection lost while idle in the pool is found before anything of the
work is done (storage.db then runs it on a new connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, exc
from sqlalchemy.util import await_

from storage.errors import LostBeforeWork as LostBeforeWork  # raised here; defined with the others


def begin(conn: Connection) -> None:
    """Send the transaction's BEGIN now, before the work runs: a pooled connection that the server closed
    while it was idle (a restart, an idle timeout) fails here, with nothing of the work done, and the
    caller can take a new one (what a ping before each checkout would buy, without its round trips).
    Raises LostBeforeWork then; any other failure as SQLAlchemy's error."""
    adapted: Any = conn.connection.dbapi_connection
    if adapted._transaction is not None:
        return
    try:
        await_(adapted._start_transaction())
    except Exception as error:
        translated = _translated(conn, adapted, "BEGIN", error)
        if isinstance(translated, exc.DBAPIError) and translated.connection_invalidated:
            raise LostBeforeWork from translated
        raise translated from error


def fetch(conn: Connection, sql: str, args: Sequence[Any]) -> list[Sequence[Any]]:
    """Run one compiled statement (asyncpg's `$n` parameters) in the connection's transaction; its rows."""
    adapted: Any = conn.connection.dbapi_connection  # SQLAlchemy's asyncpg adapter
    try:
        if (
            adapted._transaction is None
        ):  # no statement of this transaction ran yet: BEGIN as SQLAlchemy would
            await_(adapted._start_transaction())
        found: list[Sequence[Any]] = await_(adapted.driver_connection.fetch(sql, *args))
    except Exception as error:
        raise _translated(conn, adapted, sql, error) from error
    return found


def _translated(conn: Connection, adapted: Any, sql: str, error: Exception) -> Exception:
    """The error as SQLAlchemy would raise it for its own statement; the connection invalidated if lost."""
    if isinstance(error, exc.DBAPIError):
        return error
    try:
        adapted._handle_exception(error)  # raises the adapter's DB-API form of the asyncpg error
    except Exception as dbapi_error:
        error = dbapi_error
    dialect = conn.dialect
    lost = isinstance(error, dialect.loaded_dbapi.Error) and dialect.is_disconnect(error, adapted, None)
    if lost and not conn.invalidated:
        conn.invalidate(error)
    return exc.DBAPIError.instance(
        sql,
        None,
        error,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
