"""Shared fixtures: a real config file, a real SQLite database in a temporary folder, the real service."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from bot.config import Config, load_config
from storage.db import Database

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
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path, env={})


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    def make(extra: str = "", **kw: str) -> Config:
        return load_config(write_config(tmp_path, extra, **kw), env={})

    return make


@pytest_asyncio.fixture
async def db(config: Config) -> AsyncIterator[Database]:
    database = Database(config.database_url)
    await database.create_schema()
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
