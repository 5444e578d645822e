"""The schema through the shipped Alembic migrations: empty to head, the previous release to head, down
and up again, the tables equal to storage/models.py, and refusal to run on a schema we don't know."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from bot.cli import main
from bot.config import Config
from storage.db import Database
from storage.schema import SchemaError, downgrade, ensure_schema, head_revision, schema_state, upgrade
from tests.conftest import every_backend, every_backend_postgresql_slow

pytestmark = pytest.mark.empty_database  # each test makes or migrates the database itself


async def tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names())) - {"alembic_version"}


@every_backend_postgresql_slow
async def test_an_empty_database_reaches_head_with_exactly_the_model_tables(config: Config) -> None:
    db = Database(config.database_url)
    try:
        assert (await schema_state(db)).empty
        state = await upgrade(db)
        assert state.at_head and state.current == head_revision()
        assert await tables(db) == set(SQLModel.metadata.tables)

        def diff(conn):  # type: ignore[no-untyped-def]
            return compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)

        async with db.engine.connect() as conn:
            assert await conn.run_sync(diff) == []
        assert (await upgrade(db)).at_head  # again: nothing to do
    finally:
        await db.dispose()


@every_backend_postgresql_slow
async def test_the_previous_release_upgrades_and_downgrade_round_trips(config: Config) -> None:
    db = Database(config.database_url)
    try:
        await upgrade(db, "0001")  # the first release's schema, with a row in it
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO audit_event (at, actor, action, count) VALUES (CURRENT_TIMESTAMP, 'a', 'purge', 3)"
                )
            )
        assert not (await schema_state(db)).at_head
        with pytest.raises(SchemaError, match="run `reportbot db upgrade`"):
            await ensure_schema(db, auto_upgrade=False)
        assert (await ensure_schema(db, auto_upgrade=True)).at_head
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT actor, count, refs FROM audit_event"))).all()
        assert [tuple(r) for r in rows] == [("a", 3, None)]
        assert (await downgrade(db, "0001")).current == "0001"
        assert (await downgrade(db, "base")).current is None
        assert await tables(db) == set()
        assert (await upgrade(db)).at_head
        assert await tables(db) == set(SQLModel.metadata.tables)
    finally:
        await db.dispose()


async def test_a_database_made_before_migrations_is_adopted(config: Config) -> None:
    db = Database(config.database_url)
    try:
        await upgrade(db, "0001")
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE alembic_version"))  # as create_all left it
        assert (await upgrade(db)).at_head
    finally:
        await db.dispose()


@every_backend_postgresql_slow
async def test_an_unknown_schema_is_refused_with_one_line(
    config: Config, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = Database(config.database_url)
    try:
        await upgrade(db)
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        for command in (["serve"], ["purge"], ["db", "upgrade"], ["chat"]):
            code = await asyncio.to_thread(main, ["--config", str(config_path), *command])
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 2, command
            assert len(err) == 1 and "revision 9999" in err[0] and "does not know" in err[0], err
    finally:
        await db.dispose()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.postgres
async def test_postgresql_is_not_upgraded_behind_the_operators_back(
    config: Config, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await asyncio.to_thread(main, ["--config", str(config_path), "serve"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "run `reportbot db upgrade`" in err[0]
    assert await asyncio.to_thread(main, ["--config", str(config_path), "db", "upgrade"]) == 0
    assert "upgraded from empty to" in capsys.readouterr().out
    assert await asyncio.to_thread(main, ["--config", str(config_path), "db", "current"]) == 0
    assert f"revision {head_revision()}" in capsys.readouterr().out


async def test_sqlite_is_upgraded_on_start(config: Config, config_path: Path) -> None:
    from bot.cli import check_schema

    assert await asyncio.to_thread(lambda: asyncio.run(check_schema(config))) is None
    db = Database(config.database_url)
    try:
        assert (await schema_state(db)).at_head
    finally:
        await db.dispose()


@every_backend
async def test_every_foreign_key_is_the_first_column_of_an_index(config: Config) -> None:
    # Deleting a parent row (a conversation ending, a report erased) checks and updates its children by
    # the foreign key; without an index each of those reads the whole child table.
    db = Database(config.database_url)
    try:
        await upgrade(db)

        def unindexed(conn):  # type: ignore[no-untyped-def]
            found = inspect(conn)
            missing = []
            for table in found.get_table_names():
                leading = {ix["column_names"][0] for ix in found.get_indexes(table) if ix["column_names"]}
                leading |= {uc["column_names"][0] for uc in found.get_unique_constraints(table)}
                for fk in found.get_foreign_keys(table):
                    if fk["constrained_columns"][0] not in leading:
                        missing.append(f"{table}.{fk['constrained_columns'][0]}")
            return missing

        async with db.engine.connect() as conn:
            assert await conn.run_sync(unindexed) == []
    finally:
        await db.dispose()


@every_backend
async def test_an_upgrade_keeps_the_queue_and_the_heads_follow_every_write(config: Config) -> None:
    """0012 fills outbox_head from the messages already waiting; from then on the triggers keep each
    chat's oldest unsent message as its head through sends, failures and deletions."""
    from datetime import UTC, datetime, timedelta

    from storage import outbox

    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    db = Database(config.database_url)
    try:
        await upgrade(db, "0011")
        async with db.engine.begin() as conn:
            for chat, priority in (("a", 0), ("b", 1), ("a", 0), ("c", 0), ("b", 1)):
                await conn.execute(
                    text(
                        "INSERT INTO outbox (channel, chat_key, address_enc, message_enc, created_at, attempts,"
                        " next_attempt_at, priority) VALUES ('telegram', :k, 'x', 'x', :t, 0, :t, :p)"
                    ),
                    {"k": chat, "t": now - timedelta(minutes=5), "p": priority},
                )
            await conn.execute(text("UPDATE outbox SET sent_at = :t WHERE id = 4"), {"t": now})  # c is done
        await upgrade(db)

        def due(conn):  # type: ignore[no-untyped-def]
            return outbox.due_messages(conn, "telegram", now=now)

        def run(sql: str):  # type: ignore[no-untyped-def]
            return lambda conn: conn.execute(text(sql), {"t": now})

        assert await db.run_read(due) == [1, 2]  # a's oldest, then b's (a follow-up goes last)
        later = now + timedelta(minutes=1)
        await db.run_write(lambda conn: outbox.mark_retry(conn, 1, at=later, error=None))
        assert await db.run_read(due) == [2]  # a's head is in flight: a's next message waits behind it
        await db.run_write(run("UPDATE outbox SET sent_at = :t WHERE id = 1"))
        assert await db.run_read(due) == [3, 2]
        await db.run_write(lambda conn: outbox.mark_failed(conn, 2, at=now, error="x"))
        assert await db.run_read(due) == [3, 5]
        await db.run_write(run("DELETE FROM outbox WHERE id IN (3, 5)"))
        assert await db.run_read(due) == []
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM outbox_head"))).scalar() == 0
    finally:
        await db.dispose()
