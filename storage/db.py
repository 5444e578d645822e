"""The database engine: SQLite (durable settings, one writer at a time) or PostgreSQL, both async.

SQLite runs in WAL mode with `synchronous=FULL` (a commit is on disk before it returns) and
`secure_delete=ON` (deleted content is overwritten), and every transaction starts with
`BEGIN IMMEDIATE`, so that concurrent writers queue instead of failing with "database is locked" and a
transaction is the only writer from its first statement. PostgreSQL locks the rows a transaction
writes: the conversation by its `INSERT ... ON CONFLICT DO UPDATE` (storage.writes.open_conversation),
an outbox message by `FOR UPDATE SKIP LOCKED` (storage.outbox.claim_one); see storage.dialect.

`Database.run_write(work)` runs a callable it is given on a sync connection inside a transaction. It
knows nothing of what the callable does (the application's step, a delivery result). On a SQLite
file the work is group-committed: the one writer thread takes every piece of work that is waiting, runs
each in its own SAVEPOINT of one transaction, commits once, and only then answers each of them. Work
that fails rolls back to its savepoint and fails alone; a commit that fails fails them all. Nothing is
answered before the commit that holds it is on disk.

`Database.run_read(work)` runs a read beside the writer thread on a SQLite file (a connection of its
own, autocommit and `query_only`: it never takes the write lock, and WAL lets it read the last commit
while the writer writes), so that a long read (the outbox's due messages under a backlog) does not
hold up the group commits.

Work that deleted something (storage.dialect.request_checkpoint) gets the write-ahead log checkpointed
and truncated on the same thread right after its group is answered, so that the deleted rows' old pages
do not stay in the -wal file (`secure_delete` overwrites them in the database file only). The checkpoint
never waits for a reader: if one holds it back, it is tried again after the next group (or half a
second later).
"""

from __future__ import annotations

import asyncio
import logging
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

from storage import (
    models,  # noqa: F401  (registers the tables on SQLModel.metadata)
    pg,
)
from storage.dialect import CHECKPOINT_WANTED

T = TypeVar("T")
log = logging.getLogger(__name__)

MAX_BATCH = 64  # pieces of work in one group commit at most: bounds the transaction and the wait of the first

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA secure_delete=ON",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


CHECKPOINT_RETRY = 0.5  # seconds before a checkpoint held back by a reader is tried again when all is quiet


class Database:
    """One async engine and a way to run a transaction on it."""

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self.url = url
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()  # "sqlite" | "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        # Work given to run_write on a SQLite file runs on one dedicated thread over the sqlite3 driver
        # (one thread hop a transaction instead of one per statement).
        self._writer_engine: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._reader_engine: Engine | None = None  # run_read: plain reads beside the writer (WAL)
        self._waiting: list[_Queued] = []  # work waiting for the next group commit
        self._committing = False
        self._checkpoint_due = False  # committed work deleted something; the WAL still holds it
        self._retry: asyncio.TimerHandle | None = None
        self.checkpoints = 0  # how many truncating checkpoints the writer thread made (tests, benches)
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                _private_file(Path(parsed.database))
                self._writer_engine = create_engine(
                    parsed.set(drivername="sqlite+pysqlite"),
                    echo=echo,
                    connect_args={
                        "check_same_thread": False
                    },  # used by the writer thread only; closed by any
                )
                _make_sqlite_durable(self._writer_engine)
                self._reader_engine = create_engine(
                    parsed.set(drivername="sqlite+pysqlite"),
                    echo=echo,
                    connect_args={"check_same_thread": False},  # one worker thread at a time
                )
                _make_sqlite_reader(self._reader_engine)
        else:
            # No ping before each checkout (on asyncpg a BEGIN, a statement and a ROLLBACK: three round
            # trips a transaction); run_write tries its work once more on a connection that turned out lost.
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
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

    async def run_write(self, work: Callable[[Connection], T], *, first: bool = False) -> T:
        """Run the callable it is given on a sync connection inside a transaction: committed (durably)
        before this returns if `work` returns, rolled back if it raises. Returns what `work` returned.

        SQLite file: on the one writer thread, over the sqlite3 driver, with the same durable pragmas,
        in a group commit with the other work waiting (see the module's notes). Otherwise (PostgreSQL,
        in-memory SQLite): its own transaction on the async engine through `run_sync`, so both run the
        same code.

        `first` puts the work at the head of the queue, into the next group (small, rare writes that
        others wait on: the delivery loop's claims and results, which the next send waits for).
        """
        if self._writer_engine is None:
            return await self._run_alone(work)
        loop = asyncio.get_running_loop()
        queued = _Queued(work, loop.create_future())
        if first:
            self._waiting.insert(0, queued)
        else:
            self._waiting.append(queued)
        if not self._committing:
            self._commit_next(loop)
        result: T = await queued.future
        return result

    @property
    def reads_apart(self) -> bool:
        """True when run_read reads beside the writer thread (a SQLite file), not in a transaction of
        its own on the async engine."""
        return self._reader_engine is not None

    async def run_read(self, work: Callable[[Connection], T]) -> T:
        """Run a read-only callable on a sync connection and return what it returned.

        SQLite file: on a worker thread over a connection of its own that never takes the write lock
        (each statement reads the last committed state; WAL lets it run while the writer thread
        writes), so a long read does not hold up the group commits. Otherwise: one transaction on the
        async engine. `work` must not write.
        """
        if self._reader_engine is None:
            return await self._run_alone(work)
        return await asyncio.to_thread(_read, self._reader_engine, work)

    async def _run_alone(self, work: Callable[[Connection], T]) -> T:
        """`work` in its own transaction on the async engine. On asyncpg the BEGIN goes first: a pooled
        connection found lost there (the server restarted, the connection timed out while idle) is
        dropped with every connection as old as it, and the transaction starts again on a new one, before
        anything of the work ran. That is what a ping before each checkout bought, without its three
        round trips a transaction. A connection lost later fails the work, as it did with the ping."""
        for attempt in (1, 2):
            async with self.engine.connect() as conn:
                await conn.begin()  # SQLAlchemy's transaction: storage.pg's statements run in it too
                try:
                    result = await conn.run_sync(_begun_then, work)
                except pg.LostBeforeWork as lost:
                    if attempt == 1:
                        log.warning("database connection found lost at BEGIN; a new one is taken")
                        continue
                    raise lost.__cause__ or lost from None
                await conn.commit()
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    # The name the channels' delivery code and the WhatsApp adapter call today (their owners rename it).
    run_step = run_write

    def _commit_next(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand the work waiting now to the writer thread as one group (called on the event loop only)."""
        assert self._writer_engine is not None
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        if self._writer_thread is None:
            self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reportbot-writer")
        self._committing = True
        try:
            done = loop.run_in_executor(self._writer_thread, _group_commit, self._writer_engine, batch)
        except RuntimeError as exc:  # the writer thread was shut down (dispose): nothing of these ran
            failed: asyncio.Future[bool] = loop.create_future()
            failed.set_exception(exc)
            self._answer(loop, batch, failed)
            return
        done.add_done_callback(lambda f: self._answer(loop, batch, f))

    def _answer(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Queued], done: asyncio.Future[bool]
    ) -> None:
        """After the commit (or its failure): answer each piece of work of the group, checkpoint if one
        deleted something, then start the next group."""
        failed = None if done.cancelled() else done.exception()
        for queued in batch:
            queued.settle(failed)
        if failed is None and not done.cancelled() and done.result():
            self._checkpoint_due = True
        if self._checkpoint_due and self._start_checkpoint(loop):
            return
        self._committing = False
        if self._waiting:
            self._commit_next(loop)

    def _start_checkpoint(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Checkpoint on the writer thread (the next group waits for it); False if the thread is gone."""
        assert self._writer_engine is not None and self._writer_thread is not None
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        try:
            done = loop.run_in_executor(self._writer_thread, _checkpoint, self._writer_engine)
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
        if self._checkpoint_due and not self._committing and self._writer_thread is not None:
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
        """Close every pooled connection (and stop the writer thread)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._writer_thread is not None:
            self._writer_thread.shutdown(wait=True)
            self._writer_thread = None
        if self._writer_engine is not None:
            self._writer_engine.dispose()
        if self._reader_engine is not None:
            self._reader_engine.dispose()
        await self.engine.dispose()


class WriteGate:
    """Who may write to a SQLite file now, in this process: grouped work together, or one other writer alone.

    Work given to run_write (steps, outbox writes) runs on the writer thread, group-committed, so any number may
    be under way at once (`async with gate.shared()`). A writer on the async engine (quick exit, staff in
    the console) takes the gate alone (`async with gate`) and waits until the work under way is done;
    work that comes while it waits queue behind it, so it is not starved. Without the gate such a writer
    would meet the writer thread's transaction and fall back on SQLite's busy-wait sleeps.
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
            except BaseException:  # cancelled: work held back for this writer may go on
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
    """One piece of work waiting for a group commit, and what running it gave."""

    work: Callable[[Connection], Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None

    def settle(self, failed: BaseException | None) -> None:
        """Answer the caller: the group's failure, else this work's own error, else its result."""
        if self.future.done():  # its caller stopped waiting; the work ran all the same
            return
        error = failed or self.error
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(self.result)


def _group_commit(engine: Engine, batch: list[_Queued]) -> bool:
    """On the writer thread: run each piece of work of the group in one transaction, then commit once.
    True when one asked for a checkpoint (it deleted something).

    With more than one, each runs in its own SAVEPOINT, so that one that raises is undone alone. A
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
        queued.result = queued.work(conn)  # raises: the whole (one-piece) transaction rolls back
        return
    driver = conn.connection.dbapi_connection
    assert driver is not None
    for queued in batch:
        # Savepoints on the driver itself: SQLAlchemy's nested transactions cost more than a step.
        driver.execute("SAVEPOINT work")
        try:
            queued.result = queued.work(conn)
        except Exception as exc:
            driver.execute("ROLLBACK TO work")
            queued.error = exc
        driver.execute("RELEASE work")


def _read(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.connect() as conn:
        return work(conn)


def _checkpoint(engine: Engine) -> bool:
    """On the writer thread, after a commit: copy the WAL into the file and truncate it to nothing. Never
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


def _begun_then(conn: Connection, work: Callable[[Connection], T]) -> T:
    """BEGIN first on asyncpg (storage.pg.begin), then the work, on the run_sync greenlet."""
    if conn.dialect.driver == "asyncpg":
        pg.begin(conn)
    return work(conn)


def _private_file(path: Path) -> None:
    """Create the database file readable by its owner only (SQLite gives its WAL the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _make_sqlite_reader(engine: Engine) -> None:
    """A connection for reads only: the driver in autocommit (no BEGIN, so never the write lock; each
    statement sees the last commit) and the wait for a busy database that the writers have."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA query_only=ON")


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
