"""Alembic environment for reportbot's schema.

Two ways in: storage.schema hands over a live connection (`config.attributes["connection"]`), which is
how `reportbot db upgrade` and the start-up check run on the app's own async engine; or the `alembic`
command line with `-c storage/alembic.ini` and `sqlalchemy.url` (or $REPORTBOT_DATABASE__URL), used by
developers to autogenerate a new revision.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

from storage import models  # noqa: F401  (registers the tables on SQLModel.metadata)

target_metadata = SQLModel.metadata


def run_migrations(connection: Connection) -> None:
    """Run the pending migrations on one connection, in one transaction."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_url(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(run_migrations)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("reportbot migrations run online only (no --sql)")

given = context.config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    url = os.environ.get("REPORTBOT_DATABASE__URL") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url or REPORTBOT_DATABASE__URL")
    asyncio.run(run_with_url(url))
