"""The database engine: SQLite (durable settings, one writer at a time) or PostgreSQL, both async.

SQLite runs in WAL mode with `synchronous=FULL` (a commit is on disk before it returns) and
`secure_delete=ON` (deleted content is overwritten), and every transaction starts with
`BEGIN IMMEDIATE` so that concurrent writers queue instead of failing with "database is locked".
PostgreSQL locks rows with `SELECT ... FOR UPDATE` (see storage.store).

On a SQLite file the steps are group-committed: the one step thread takes every step that is waiting,
runs each in its own SAVEPOINT of one transaction, commits once, and only then answers each of them.
A step that fails rolls back to its savepoint and fails alone; a commit that fails fails them all.
Nothing is answered before the commit that holds it is on disk.

A step that deleted something (`request_checkpoint`) gets the write-ahead log checkpointed and truncated
on the same thread right after its group is answered, so that the deleted rows' old pages do not stay in
the -wal file (`secure_delete` overwrites them in the database file only). The checkpoint never waits for
a reader: if one holds it back, it is tried again after the next group (or half a second later).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

T = TypeVar("T")

MAX_BATCH = 64  # steps in one group commit at most: bounds the transaction and the wait of the first

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


CHECKPOINT_WANTED = "reportbot.checkpoint"  # a flag in the driver connection's info (see request_checkpoint)
CHECKPOINT_RETRY = 0.5  # seconds before a checkpoint held back by a reader is tried again when all is quiet


def request_checkpoint(conn: Connection) -> None:
    """Ask for the write-ahead log to be checkpointed and truncated once this transaction is committed,
    because it deleted something (SQLite; PostgreSQL has no such file, see docs/security.md)."""
    if conn.dialect.name == "sqlite":
        conn.info[CHECKPOINT_WANTED] = True


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
        self._waiting: list[_Queued] = []  # steps waiting for the next group commit
        self._committing = False
        self._checkpoint_due = False  # a committed step deleted something; the WAL still holds it
        self._retry: asyncio.TimerHandle | None = None
        self.checkpoints = 0  # how many truncating checkpoints the step thread made (tests, benches)
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
        """Run `fn` on a sync connection inside a transaction: committed (durably) before this returns
        if `fn` returns, rolled back if it raises.

        SQLite file: on the one step thread, over the sqlite3 driver, with the same durable pragmas, in
        a group commit with the other steps waiting (see the module's notes). Otherwise (PostgreSQL,
        in-memory SQLite): its own transaction on the async engine through `run_sync`, so both run the
        same code.
        """
        if self._step_engine is None:
            async with self.engine.begin() as conn:
                return await conn.run_sync(fn)
        loop = asyncio.get_running_loop()
        queued = _Queued(fn, loop.create_future())
        self._waiting.append(queued)
        if not self._committing:
            self._commit_next(loop)
        result: T = await queued.future
        return result

    def _commit_next(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the steps waiting now to the step thread as one group (called on the event loop only)."""
        assert self._step_engine is not None
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if self._step_thread is None:
            self._step_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reportbot-step")
        self._committing = True
        try:
            done = loop.run_in_executor(self._step_thread, _group_commit, self._step_engine, batch)
        except RuntimeError as exc:  # the step thread was shut down (dispose): nothing of these ran
            failed: asyncio.Future[bool] = loop.create_future()
            failed.set_exception(exc)
            self._answer(loop, batch, failed)
            return
        done.add_done_callback(lambda f: self._answer(loop, batch, f))

    def _answer(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Queued], done: asyncio.Future[bool]
    ) -> None:
        """After the commit (or its failure): answer each step of the group, checkpoint if one deleted
        something, then start the next group."""
        failed = None if done.cancelled() else done.exception()
        for queued in batch:
            if queued.future.done():  # its caller stopped waiting; the step ran all the same
                continue
            if failed is not None:
                queued.future.set_exception(failed)
            elif queued.error is not None:
                queued.future.set_exception(queued.error)
            else:
                queued.future.set_result(queued.result)
        if failed is None and not done.cancelled() and done.result():
            self._checkpoint_due = True
        if self._checkpoint_due and self._start_checkpoint(loop):
            return
        self._committing = False
        if self._waiting:
            self._commit_next(loop)

    def _start_checkpoint(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Checkpoint on the step thread (the next group waits for it); False if the thread is gone."""
        assert self._step_engine is not None and self._step_thread is not None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        try:
            done = loop.run_in_executor(self._step_thread, _checkpoint, self._step_engine)
        except RuntimeError:  # shut down (dispose): a clean close checkpoints anyway
            return False
        done.add_done_callback(lambda f: self._checkpointed(loop, f))
        return True

    def _checkpointed(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[bool]) -> None:
        complete = not done.cancelled() and done.exception() is None and done.result()
        if complete:
            self.checkpoints += 1
        self._checkpoint_due = not complete
        self._committing = False
        if self._waiting:
            self._commit_next(loop)
        elif self._checkpoint_due and self._retry is None:
            self._retry = loop.call_later(CHECKPOINT_RETRY, self._retry_checkpoint, loop)

    def _retry_checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        self._retry = None
        if self._checkpoint_due and not self._committing and self._step_thread is not None:
            self._committing = True
            if not self._start_checkpoint(loop):
                self._committing = False

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
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._step_thread is not None:
            self._step_thread.shutdown(wait=True)
            self._step_thread = None
        if self._step_engine is not None:
            self._step_engine.dispose()
        await self.engine.dispose()


class WriteGate:
    """Who may write to a SQLite file now, in this process: steps together, or one other writer alone.

    Steps (and outbox writes) run on the step thread and are group-committed, so any number of them may
    be under way at once (`async with gate.shared()`). A writer on the async engine (quick exit, staff in
    the console) takes the gate alone (`async with gate`) and waits until the steps under way are done;
    steps that come while it waits queue behind it, so it is not starved. Without the gate such a writer
    would meet the step thread's transaction and fall back on SQLite's busy-wait sleeps.
    """

    def __init__(self) -> None:
        self._shared = 0
        self._alone = False
        self._wanting_alone = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        if self._alone or self._wanting_alone:
            async with self._changed:
                await self._changed.wait_for(lambda: not self._alone and not self._wanting_alone)
        self._shared += 1  # no await since the check above: nothing can have changed in between
        try:
            yield
        finally:
            self._shared -= 1
            if self._shared == 0 and self._wanting_alone:
                async with self._changed:
                    self._changed.notify_all()

    async def __aenter__(self) -> None:
        async with self._changed:
            self._wanting_alone += 1
            try:
                await self._changed.wait_for(lambda: not self._alone and self._shared == 0)
            except BaseException:  # cancelled: steps held back for this writer may go on
                self._wanting_alone -= 1
                self._changed.notify_all()
                raise
            self._wanting_alone -= 1
            self._alone = True

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self._alone = False
            self._changed.notify_all()


@dataclass
class _Queued:
    """One step waiting for a group commit, and what running it gave."""

    fn: Callable[[Connection], Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


def _group_commit(engine: Engine, batch: list[_Queued]) -> bool:
    """On the step thread: run each step of the group in one transaction, then commit once. True when a
    step asked for a checkpoint (it deleted something).

    With more than one step each runs in its own SAVEPOINT, so that one that raises is undone alone. A
    failure of the transaction itself (BEGIN, a savepoint, COMMIT) raises, and the caller fails them all.
    """
    with engine.connect() as conn:
        try:
            with conn.begin():
                _run_group(conn, batch)
        finally:
            wanted = bool(conn.info.pop(CHECKPOINT_WANTED, False))
    return wanted


def _run_group(conn: Connection, batch: list[_Queued]) -> None:
    if len(batch) == 1:
        queued = batch[0]
        queued.result = queued.fn(conn)  # raises: the whole (one-step) transaction rolls back
        return
    driver = conn.connection.dbapi_connection
    assert driver is not None
    for queued in batch:
        # Savepoints on the driver itself: SQLAlchemy's nested transactions cost more than the step.
        driver.execute("SAVEPOINT step")
        try:
            queued.result = queued.fn(conn)
        except Exception as exc:
            driver.execute("ROLLBACK TO step")
            queued.error = exc
        driver.execute("RELEASE step")


def _checkpoint(engine: Engine) -> bool:
    """On the step thread, after a commit: copy the WAL into the file and truncate it to nothing. Never
    waits: a reader in the middle of a transaction makes it return False (try again later)."""
    with engine.connect() as conn:
        driver = conn.connection.dbapi_connection
        assert driver is not None
        driver.execute("PRAGMA busy_timeout=0")
        try:
            busy, _log, _done = driver.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            driver.execute("PRAGMA busy_timeout=30000")
    return int(busy) == 0


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
