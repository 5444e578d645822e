"""The database schema's version: where a database is, moving it to head (or back), and refusing to run
on a schema this code does not know.

Migrations are Alembic revisions shipped inside the package (storage/migrations). They run on the app's
own async engine through `run_sync`, so SQLite gets the same durable pragmas and `BEGIN IMMEDIATE` as
every other transaction. A database made by `create_all` before migrations existed (tables, no version)
is recognised and stamped with the first revision before upgrading.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.errors import SchemaError as SchemaError  # raised here; defined with the others
from storage.models import table_names

MIGRATIONS = Path(__file__).parent / "migrations"
FIRST_REVISION = "0001"
_FIRST_TABLES = {"conversation", "inbound_receipt", "report", "transcript_entry", "outbox", "audit_event"}


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: its revision (None when unversioned) against this code's head."""

    current: str | None
    head: str
    known: bool  # the current revision is one this code ships
    has_tables: bool  # any of our tables exist

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def empty(self) -> bool:
        return self.current is None and not self.has_tables


def alembic_config() -> AlembicConfig:
    """Alembic's configuration, pointing at the migrations inside the package (no ini file needed)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@cache
def _script() -> ScriptDirectory:
    """The shipped revisions, read once a process (they are files in the package; Alembic would read
    and run every one of them again on each call)."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code ships."""
    head = _script().get_current_head()
    assert head is not None
    return head


def _known_revisions() -> set[str]:
    return {rev.revision for rev in _script().walk_revisions()}


def _state(conn: Connection) -> SchemaState:
    current = MigrationContext.configure(conn).get_current_revision()
    existing = set(inspect(conn).get_table_names())
    return SchemaState(
        current=current,
        head=head_revision(),
        known=current is None or current in _known_revisions(),
        has_tables=bool(existing & set(table_names())),
    )


async def schema_state(db: Database) -> SchemaState:
    """Read where the database stands."""
    async with db.engine.connect() as conn:
        return await conn.run_sync(_state)


def _run(conn: Connection, action: str, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    if action == "upgrade":
        state = _state(conn)
        if state.current is None and state.has_tables:
            existing = set(inspect(conn).get_table_names())
            if not existing >= _FIRST_TABLES:
                raise SchemaError(
                    "database has some reportbot tables but no schema version; restore it or start afresh"
                )
            command.stamp(cfg, FIRST_REVISION)  # made by create_all before migrations existed
        elif revision == "head" and state.at_head:
            return  # nothing to do (every start-up and `db upgrade` on a current database)
        command.upgrade(cfg, revision)
    elif action == "downgrade":
        command.downgrade(cfg, revision)
    else:  # pragma: no cover
        raise ValueError(action)


async def _migrate(db: Database, action: str, revision: str) -> SchemaState:
    async with db.engine.connect() as conn:
        state = await conn.run_sync(_state)
        if not state.known:
            raise SchemaError(unknown_line(state))
        await conn.run_sync(_run, action, revision)
        await conn.commit()
        return await conn.run_sync(_state)


async def upgrade(db: Database, revision: str = "head") -> SchemaState:
    """Create or upgrade the schema to `revision` (head by default). Safe to run again."""
    return await _migrate(db, "upgrade", revision)


async def downgrade(db: Database, revision: str) -> SchemaState:
    """Take the schema back to `revision` ("base" drops every table)."""
    return await _migrate(db, "downgrade", revision)


def unknown_line(state: SchemaState) -> str:
    return (
        f"database schema is at revision {state.current}, which this version of reportbot does not know "
        f"(newest known: {state.head}); upgrade reportbot or restore the database"
    )


async def ensure_schema(db: Database, *, auto_upgrade: bool) -> SchemaState:
    """Make sure the app can run on this database, or raise SchemaError with one line.

    `auto_upgrade` (local SQLite) brings an older or empty database to head; otherwise (PostgreSQL,
    several workers) the operator runs `reportbot db upgrade` once, and a worker refuses to start
    until then.
    """
    state = await schema_state(db)
    if not state.known:
        raise SchemaError(unknown_line(state))
    if state.at_head:
        return state
    if auto_upgrade:
        return await upgrade(db)
    where = "empty" if state.empty else f"at revision {state.current or 'none'}"
    raise SchemaError(
        f"database schema is {where}, this reportbot needs {state.head}: run `reportbot db upgrade` first"
    )


def describe(state: SchemaState) -> dict[str, Any]:
    """The state as plain values, for `reportbot db current`."""
    return {"current": state.current, "head": state.head, "at_head": state.at_head}
