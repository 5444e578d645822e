"""`reportbot db upgrade|downgrade REVISION|current`: the database schema."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable

from bot.config import Config
from bot.staff.registry import Command, actions
from storage import schema
from storage.db import Database
from storage.maintenance import count_rows


def _options(parser: argparse.ArgumentParser) -> None:
    add = actions(parser, "db_command")
    add("upgrade", "create or upgrade the schema to this version's")
    add("downgrade", "take the schema back to a revision").add_argument(
        "revision", help='a revision id, or "base" to drop every table'
    )
    add("current", "show the schema revision and row counts")


async def _upgrade(db: Database, args: argparse.Namespace) -> None:
    before = await schema.schema_state(db)
    state = await schema.upgrade(db)
    if before.current == state.current:
        print(f"reportbot: database schema is up to date (revision {state.current})")
    else:
        print(f"reportbot: database schema upgraded from {before.current or 'empty'} to {state.current}")


async def _downgrade(db: Database, args: argparse.Namespace) -> None:
    state = await schema.downgrade(db, args.revision)
    print(f"reportbot: database schema is now at {state.current or 'base (no tables)'}")


async def _current(db: Database, args: argparse.Namespace) -> None:
    state = await schema.schema_state(db)
    print(f"revision {state.current or 'none'} (this reportbot: {state.head})")
    if state.has_tables and state.known:
        for table, n in (await count_rows(db)).items():
            print(f"{table} {n}")


ACTIONS: dict[str, Callable[[Database, argparse.Namespace], Awaitable[None]]] = {
    "upgrade": _upgrade,
    "downgrade": _downgrade,
    "current": _current,
}


async def run(args: argparse.Namespace, config: Config) -> int:
    """The schema is the one thing this command may change without checking it first."""
    db = Database(config.database_url)
    try:
        await ACTIONS[args.db_command](db, args)
    finally:
        await db.dispose()
    return 0


COMMAND = Command("db", "database schema", run, options=_options, order=60)
