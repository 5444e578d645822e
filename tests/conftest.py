"""Shared fixtures: a real config file, a real database (SQLite in a temporary folder, or a throw-away
PostgreSQL database), the real service.

Backends: tests run on SQLite unless marked `@every_backend` (parametrised over `backend`), as the
storage contract tests are.

A PostgreSQL test gets its own database (created here, dropped afterwards) on the server named by
$REPORTBOT_TEST_POSTGRES_URL. Without a reachable server it is skipped with the reason, except under
CI=true, where it fails.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import make_url

from bot.config import Config, load_config
from storage.db import Database
from storage.schema import upgrade
from tests.languages import installed as installed  # the test languages (tests/languages.py)

PG_URL = os.environ.get("REPORTBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# The storage contract: a test that takes `db` and wears this runs on SQLite and on PostgreSQL.
every_backend = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
_pg_problem: str | None = None
_pg_checked = False

# CI runs the same examples every time (a failure there is reproducible); local runs keep exploring.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_available() -> str | None:
    """None when the test PostgreSQL answers, else why not (checked once per run)."""
    global _pg_checked, _pg_problem
    if not _pg_checked:
        import asyncio

        import asyncpg

        async def probe() -> None:
            conn = await asyncpg.connect(_asyncpg_dsn(PG_URL), timeout=3)
            await conn.close()

        try:
            asyncio.run(probe())
        except Exception as exc:
            _pg_problem = (
                f"PostgreSQL at REPORTBOT_TEST_POSTGRES_URL not reachable ({type(exc).__name__}: {exc})"
            )
        _pg_checked = True
    return _pg_problem


def require_postgres() -> None:
    """Skip (or, under CI=true, fail) when the test PostgreSQL is not reachable."""
    problem = _pg_available()
    if problem is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{problem}; CI=true requires it")
    pytest.skip(problem)


def require_chromium() -> str:
    """The path of Debian's Chromium; skip without it (or, under CI=true, fail: `make test` installs it)."""
    from tests.staff import screenshot

    found = screenshot.browser()
    if found is not None:
        return found
    problem = "no Chromium on PATH (make test installs it with apt-get when run as root)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{problem}; CI=true requires it")
    pytest.skip(problem)


def create_pg_database() -> str:
    """A fresh, uniquely named PostgreSQL database; returns its URL. Drop it with drop_pg_database."""
    import asyncio

    import asyncpg

    name = f"reportbot_test_{secrets.token_hex(6)}"

    async def create() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def drop_pg_database(url: str) -> None:
    import asyncio

    import asyncpg

    name = make_url(url).database

    async def drop() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(PG_URL))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" unless a test is parametrised over BACKENDS (indirect)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture
def database_url(backend: str) -> Iterator[str | None]:
    """None for SQLite (the config's default file); a fresh PostgreSQL database otherwise."""
    if backend == "sqlite":
        yield None
        return
    require_postgres()
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


PARTNERS_TOML = """
[[partners]]
id = "police"
name = "Police"
does = "The police can look into what happened."

[[partners]]
id = "council"
name = "The council"
does = "The council can help with problems where you live."

[[support]]
name = "Stop Hate UK"
for = "anyone affected by hate"
contact = "0800 138 1625"
"""


def write_config(tmp_path: Path, extra: str = "", *, database_url: str | None = None) -> Path:
    """Write a complete config file with fresh keys into tmp_path and return its path."""
    data_dir = tmp_path / "data"
    db_line = f'url = "{database_url}"' if database_url else ""
    text = f"""
[service]
data_dir = "{data_dir}"

[database]
{db_line}

[security]
encryption_keys = ["{Fernet.generate_key().decode()}"]
pseudonym_key = "{"p" * 20}{os.urandom(16).hex()}"
{PARTNERS_TOML}
{extra}
"""
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def config_path(tmp_path: Path, database_url: str | None) -> Path:
    return write_config(tmp_path, database_url=database_url)


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path, env={})


@pytest.fixture
def make_config(tmp_path: Path, database_url: str | None) -> Callable[..., Config]:
    def make(extra: str = "", **kw: str) -> Config:
        kw.setdefault("database_url", database_url)  # type: ignore[arg-type]
        return load_config(write_config(tmp_path, extra, **kw), env={})

    return make


@pytest_asyncio.fixture
async def db(config: Config) -> AsyncIterator[Database]:
    """The config's database, brought to head by the shipped migrations."""
    database = Database(config.database_url)
    await upgrade(database)
    yield database
    await database.dispose()


def sqlite_file(config: Config) -> Path:
    """The SQLite file behind a config."""
    return Path(config.database_url.split("///", 1)[1])


def raw_database_bytes(config: Config) -> bytes:
    """Every byte SQLite has on disk for this database: the file, its WAL and shared memory."""
    base = sqlite_file(config)
    data = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = Path(str(base) + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


async def stored_text(db: Database) -> str:
    """Every value in every table, as text: what anyone who can read the database sees (both backends)."""
    from sqlalchemy import text

    from storage.models import table_names

    out: list[str] = []
    async with db.engine.connect() as conn:
        for name in table_names():
            for row in (await conn.execute(text(f"SELECT * FROM {name}"))).all():
                out.append(" ".join(str(v) for v in row))
    return "\n".join(out)
