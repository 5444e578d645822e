"""Shared fixtures: a real config file, a real database (SQLite in a temporary folder, or a throw-away
PostgreSQL database), the real service.

Backends: tests run on SQLite unless marked `@every_backend` (parametrised over `backend`), as the
storage contract tests are.

A PostgreSQL test gets a database of its own on the server named by $REPORTBOT_TEST_POSTGRES_URL.
Without a reachable server it is skipped with the reason, except under CI=true, where it fails.

Migrated once, not once a test: the shipped migrations run once per test process (per xdist worker).
A SQLite test's database file starts as a copy of a migrated template, written where the config puts
it. A PostgreSQL test gets the process's migrated database, every table of which is emptied when the
test ends (`pg_database`). The test's own `upgrade()` then finds the database at head. A test about
making or migrating a database (storage/test_migrations.py, file modes) wears
`@pytest.mark.empty_database` and starts with nothing, as a first start does (on PostgreSQL: a new
database, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet
from hypothesis import settings as hypothesis_settings
from sqlalchemy.engine import make_url

from bot.config import Config, load_config
from storage.db import Database
from storage.schema import upgrade
from tests.languages import installed as installed  # the test languages (tests/languages.py)

T = TypeVar("T")
PG_URL = os.environ.get("REPORTBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# The storage contract: a test that takes `db` and wears this runs on SQLite and on PostgreSQL.
every_backend = pytest.mark.parametrize("backend", BACKENDS, indirect=True)
# The same with the PostgreSQL case marked slow, for a whole service or staff command run on both, or a
# migration run on a database of its own (a second or more of server round trips or CREATE DATABASE
# each): `make test` runs both cases, `make test-fast` the SQLite one.
every_backend_postgresql_slow = pytest.mark.parametrize(
    "backend",
    ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])],
    indirect=True,
)
_pg_problem: str | None = None
_pg_checked = False
_pg_pool: list[str] = []  # this process's migrated PostgreSQL databases not in use by a test
_pg_made: list[str] = []  # every one of them (dropped at the session's end)
_pg_head_tables: list[str] = []  # the tables the migrations make, as PostgreSQL lists them
_empty_wanted = False  # set for the running test by `_empty_database_marker`

# CI runs the same examples every time (a failure there is reproducible); local runs keep exploring.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    hypothesis_settings.load_profile("ci")

# How many examples a property test tries, in percent of its own number: `make test-fast` sets 25 (the
# same properties, a quarter of the examples, for the loop between changes); `make test` and CI, 100.
EXAMPLES_PERCENT = int(os.environ.get("REPORTBOT_TEST_EXAMPLES_PERCENT", "100"))


def examples(count: int) -> int:
    """A property test's number of examples, scaled by REPORTBOT_TEST_EXAMPLES_PERCENT (10 at least)."""
    return max(10, count * EXAMPLES_PERCENT // 100)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_available() -> str | None:
    """None when the test PostgreSQL answers, else why not (checked once per run)."""
    global _pg_checked, _pg_problem
    if not _pg_checked:
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
    """A fresh, empty, uniquely named PostgreSQL database; returns its URL. Drop it with drop_pg_database."""
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


@contextmanager
def pg_database(*, migrated: bool = True) -> Iterator[str]:
    """A PostgreSQL database of the test's own, its URL: at head (`migrated`) or empty.

    A migrated one is this process's, emptied after each test (every table truncated, the schema left
    at head) and handed to the next, so that the suite does not pay CREATE DATABASE, the migrations and
    DROP DATABASE for every test. One whose schema a test changed is dropped instead."""
    url = _pg_pool.pop() if migrated and _pg_pool else create_pg_database()
    if migrated and url not in _pg_made:
        _migrate(url)
        _pg_made.append(url)
        _pg_head_tables[:] = asyncio.run(_on_pg(url, _public_tables))
    try:
        yield url
    finally:
        if migrated and asyncio.run(_on_pg(url, _emptied)):
            _pg_pool.append(url)
        else:
            drop_pg_database(url)


async def _on_pg(url: str, work: Callable[[Any], Awaitable[T]]) -> T:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return await work(conn)
    finally:
        await conn.close()


async def _public_tables(conn: Any) -> list[str]:
    return sorted(
        str(r[0]) for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    )


async def _emptied(conn: Any) -> bool:
    """Empty every table of a database a test left at head and restart its id sequences; False (and
    nothing done) if its tables or its revision are not what the migrations made, or it cannot be done.

    DELETE with foreign-key triggers off (superuser) is ten times quicker than TRUNCATE here, which
    makes new files for every table."""
    from storage.schema import head_revision

    await conn.execute(  # a test may leave a connection open (a pool not disposed): end it
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    tables = await _public_tables(conn)
    if (
        tables != _pg_head_tables
        or await conn.fetchval("SELECT version_num FROM alembic_version") != head_revision()
    ):
        return False
    sequences = await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL session_replication_role = replica")  # no FK order to follow
            for table in tables:
                if table != "alembic_version":
                    await conn.execute(f'DELETE FROM "{table}"')
            for row in sequences:
                await conn.execute(f'ALTER SEQUENCE "{row[0]}" RESTART')
    except Exception:  # not a superuser, say: drop it instead
        return False
    return True


def _migrate(url: str) -> None:
    """Bring the database at `url` to head with the shipped migrations (from any thread, any loop)."""

    async def run() -> None:
        database = Database(url)
        try:
            await upgrade(database)
        finally:
            await database.dispose()

    with ThreadPoolExecutor(1) as thread:  # a test's event loop may be running on this one
        thread.submit(asyncio.run, run()).result()


@cache
def _sqlite_template() -> bytes:
    """The bytes of a SQLite database at head, migrated once a process."""
    folder = Path(tempfile.mkdtemp(prefix="reportbot-template-", dir=os.environ.get("PYTEST_DEBUG_TEMPROOT")))
    try:
        file = folder / "reportbot.db"
        _migrate(f"sqlite+aiosqlite:///{file}")
        assert not Path(f"{file}-wal").exists(), "the template must be whole in its one file"
        return file.read_bytes()
    finally:
        shutil.rmtree(folder)


RAM_DISK = Path("/dev/shm")


def pytest_configure(config: pytest.Config) -> None:
    """Temporary folders (tmp_path: the tests' SQLite files, evidence, exports) on a RAM disk when the
    machine has one: a commit still calls fsync, but there it costs 0.2 ms instead of about 5 ms on
    this disk, and a conversation commits a hundred times. Nothing tested depends on the disk (the
    crash tests kill processes, which loses nothing the kernel was given). A run takes about 10 MB; a
    RAM disk with less than 512 MiB free is not used. PYTEST_DEBUG_TEMPROOT (pytest's own setting)
    chooses another place; xdist workers get folders under the same root."""
    if "PYTEST_DEBUG_TEMPROOT" not in os.environ and _roomy(RAM_DISK):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = str(RAM_DISK)


def _roomy(folder: Path, needed: int = 512 * 2**20) -> bool:
    """A writable folder with room for a run (a container's /dev/shm may be 64 MiB: not that one)."""
    if not (folder.is_dir() and os.access(folder, os.W_OK)):
        return False
    free = os.statvfs(folder)
    return free.f_bavail * free.f_frsize >= needed


def pytest_sessionfinish(session: pytest.Session) -> None:
    for url in _pg_made:
        drop_pg_database(url)


@pytest.fixture(autouse=True)
def _empty_database_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests marked `empty_database` start with no database at all; the rest with a migrated copy."""
    global _empty_wanted
    _empty_wanted = request.node.get_closest_marker("empty_database") is not None
    yield
    _empty_wanted = False


def _place_sqlite_copy(data_dir: Path) -> None:
    """The migrated template where the config's default SQLite file goes, unless one is there already
    (a second config for the same folder keeps its database) or the test wants none."""
    file = data_dir / "reportbot.db"
    if _empty_wanted or file.exists():
        return
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(_sqlite_template())


def drop_pg_database(url: str) -> None:
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
    with pg_database(migrated=not _empty_wanted) as url:
        yield url


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
    if not database_url:
        _place_sqlite_copy(data_dir)
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
