"""Group commit on a SQLite file: steps waiting together share one transaction and one commit, each in
its own savepoint; none is answered before the commit that holds it, one that fails is undone alone,
and a commit that fails fails them all. The write gate lets steps run together and another writer
alone."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import Database, WriteGate


def add_event(actor: str, *, fail: bool = False) -> Any:
    def fn(conn: Connection) -> str:
        conn.execute(
            text(
                "INSERT INTO audit_event (at, actor, action, count) VALUES (CURRENT_TIMESTAMP, :a, 'test', 1)"
            ),
            {"a": actor},
        )
        if fail:
            raise ValueError(f"{actor} failed")
        return actor

    return fn


async def actors(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(text("SELECT actor FROM audit_event WHERE action = 'test' ORDER BY id"))
        return [r[0] for r in rows]


async def test_steps_waiting_together_commit_together_and_a_failing_one_is_undone_alone(db: Database) -> None:
    names = [f"step-{i}" for i in range(30)]
    calls = [db.run_step(add_event(n, fail=(n == "step-17"))) for n in names]
    results = await asyncio.gather(*calls, return_exceptions=True)

    assert isinstance(results[17], ValueError) and str(results[17]) == "step-17 failed"
    assert [r for i, r in enumerate(results) if i != 17] == [n for n in names if n != "step-17"]
    assert await actors(db) == [n for n in names if n != "step-17"]  # in the order they came


async def test_a_commit_that_fails_fails_every_step_in_it_and_stores_none(db: Database) -> None:
    await db.run_step(add_event("before"))

    def dangling(conn: Connection) -> str:
        # A foreign key checked only at COMMIT: the savepoint is released, then the commit is refused.
        conn.exec_driver_sql("PRAGMA defer_foreign_keys = ON")
        conn.execute(
            text(
                "INSERT INTO transcript_entry (conversation_id, seq, at, direction, author, text_enc) "
                "VALUES (999999, 1, CURRENT_TIMESTAMP, 'in', 'person', 'x')"
            )
        )
        return "dangling"

    # The first step goes alone; the three started while it commits wait, and go as one group.
    first = asyncio.ensure_future(db.run_step(add_event("first")))
    group = [asyncio.ensure_future(db.run_step(f)) for f in (add_event("a"), dangling, add_event("b"))]
    assert await first == "first"
    results = await asyncio.gather(*group, return_exceptions=True)

    assert all(isinstance(r, IntegrityError) for r in results), results
    assert await actors(db) == ["before", "first"]
    assert await db.run_step(add_event("after")) == "after"  # the step thread goes on
    assert await actors(db) == ["before", "first", "after"]


async def test_a_writer_alone_waits_for_the_steps_under_way_and_the_next_steps_wait_for_it() -> None:
    gate = WriteGate()
    order: list[str] = []
    step_may_end = asyncio.Event()

    async def step(name: str, hold: asyncio.Event | None = None) -> None:
        async with gate.shared():
            order.append(f"{name} in")
            if hold is not None:
                await hold.wait()
            order.append(f"{name} out")

    async def alone() -> None:
        async with gate:
            order.append("alone in")
            await asyncio.sleep(0.01)
            order.append("alone out")

    first = asyncio.create_task(step("first", step_may_end))
    await asyncio.sleep(0)
    writer = asyncio.create_task(alone())
    await asyncio.sleep(0.01)
    later = asyncio.create_task(step("later"))
    await asyncio.sleep(0.01)
    assert order == ["first in"]  # the writer waits for the step under way; the later step waits too
    step_may_end.set()
    await asyncio.gather(first, writer, later)
    assert order == ["first in", "first out", "alone in", "alone out", "later in", "later out"]


async def test_a_writer_that_gives_up_waiting_lets_the_held_steps_go() -> None:
    gate = WriteGate()
    held = asyncio.Event()

    async def holder() -> None:
        async with gate.shared():
            await held.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02):
            await gate.__aenter__()
    async with asyncio.timeout(1):  # a new step is not held back by the writer that left
        async with gate.shared():
            pass
    held.set()
    await task


async def test_a_read_runs_beside_a_write_under_way_sees_only_what_is_committed_and_cannot_write(
    db: Database,
) -> None:
    await db.run_write(add_event("committed"))
    inside, release = threading.Event(), threading.Event()

    def slow_write(conn: Connection) -> str:
        add_event("under-way")(conn)
        inside.set()
        assert release.wait(10), "the test never let the write finish"
        return "done"

    writing = asyncio.ensure_future(db.run_write(slow_write))
    assert await asyncio.to_thread(inside.wait, 10)

    def read(conn: Connection) -> list[str]:
        rows = conn.execute(text("SELECT actor FROM audit_event WHERE action = 'test' ORDER BY id"))
        return [r[0] for r in rows]

    # The writer holds SQLite's write lock; the read neither waits for it nor sees its rows.
    assert await asyncio.wait_for(db.run_read(read), 5) == ["committed"]
    with pytest.raises(OperationalError, match="readonly"):
        await db.run_read(add_event("from-a-read"))
    release.set()
    assert await writing == "done"
    assert await db.run_read(read) == ["committed", "under-way"]
