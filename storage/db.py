"""The database engine: SQLite (durable settings, one writer at a time) or PostgreSQL, both async.

SQLite runs in WAL mode with `synchronous=FULL` (a commit is on disk before it returns) and
`secure_delete=ON` (deleted content is overwritten), and every transaction starts with
`BEGIN IMMEDIATE` so that concurrent writers queue instead of failing with "database is locked".
PostgreSQL locks rows with `SELECT ... FOR UPDATE` (see storage.store).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

T = TypeVar("T")

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


class Database:
    """One async engine and a way to run a transaction on it."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()  # "sqlite" | "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        # The service's step on a SQLite file runs on one dedicated thread over the sqlite3 driver (one
        # thread hop a step instead of one per statement); see run_step.
        self._step_engine: Engine | None = None
        self._step_thread: ThreadPoolExecutor | None = None
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _private_file(Path(parsed.database))
                self._step_engine = create_engine(
                    parsed.set(drivername="sqlite+pysqlite"),
                    echo=echo,
                    connect_args={"check_same_thread": False},  # used by the step thread only; closed by any
                )
                _make_sqlite_durable(self._step_engine)
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _make_sqlite_durable(self.engine.sync_engine)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed if the block ends normally, else rolled back."""
        async with self._sessions() as session, session.begin():
            yield session

    async def run_step(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn` on a sync connection inside one transaction: committed (durably) before this returns
        if `fn` returns, rolled back if it raises.

        SQLite file: on the one step thread, over the sqlite3 driver, BEGIN IMMEDIATE ... COMMIT with
        the same durable pragmas. Otherwise (PostgreSQL, in-memory SQLite): on the async engine through
        `run_sync`, so both run the same code.
        """
        if self._step_engine is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        if self._step_thread is None:
            self._step_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reportbot-step")
        engine = self._step_engine

        def in_transaction() -> T:
            with engine.begin() as conn:
                return fn(conn)

        return await asyncio.get_running_loop().run_in_executor(self._step_thread, in_transaction)

    async def create_schema(self) -> None:
        """Bring the schema to head with the shipped migrations (the only way tables are made)."""
        from storage.schema import upgrade  # schema builds on this module

        await upgrade(self)

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection (and stop the step thread)."""
        if self._step_thread is not None:
            self._step_thread.shutdown(wait=True)
            self._step_thread = None
        if self._step_engine is not None:
            self._step_engine.dispose()
        await self.engine.dispose()


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite gives its WAL the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _make_sqlite_durable(engine: Engine) -> None:
    """Durable pragmas on every connection, and BEGIN IMMEDIATE for every transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so that "begin" below decides how it starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
