"""Three reports made through the real console conversation, once per session, copied for each test.

- A: the person it happened to, contact here in the chat, shared with the police (18 March 2026);
- B: a witness, anonymous, shared with the council, sent at 23:30 UTC on 2 April (00:30 on 3 April in
  London, so date filters must use the service's time zone);
- C: for someone else, contact by phone, shared with the police and the council (10 May 2026).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from bot.config import Config, load_config
from storage.db import Database
from storage.schema import upgrade
from tests.conftest import write_config
from tests.staff.conversation import ANONYMOUS, BY_PHONE, CONTACT_IN_CHAT, Conversation, converse

AT_A = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)
AT_B = datetime(2026, 4, 2, 23, 30, tzinfo=UTC)
AT_C = datetime(2026, 5, 10, 14, 15, tzinfo=UTC)


@dataclass
class Made:
    """The reports and what each reporter saw."""

    a: Conversation
    b: Conversation
    c: Conversation

    @property
    def refs(self) -> tuple[str, str, str]:
        assert self.a.reference and self.b.reference and self.c.reference
        return self.a.reference, self.b.reference, self.c.reference


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Made]:
    folder = tmp_path_factory.mktemp("staff-template")
    config = load_config(write_config(folder), env={})

    async def make() -> Made:
        db = Database(config.database_url)
        await upgrade(db)
        try:
            a = await converse(config, db, CONTACT_IN_CHAT, chat_id="chat-a", at=AT_A)
            b = await converse(config, db, ANONYMOUS, chat_id="chat-b", at=AT_B)
            c = await converse(config, db, BY_PHONE, chat_id="chat-c", at=AT_C)
        finally:
            await db.dispose()
        return Made(a, b, c)

    made = asyncio.run(make())
    assert all(made.refs), "every scripted conversation must end with a submitted report"
    return folder, made


@pytest.fixture
def made(template: tuple[Path, Made]) -> Made:
    return template[1]


@pytest.fixture
def staff_config_path(template: tuple[Path, Made], tmp_path: Path) -> Path:
    """A private copy of the template: its config file (same keys) and its database."""
    source, _ = template
    target = tmp_path / "deploy"
    shutil.copytree(source, target)
    path = target / "config.toml"
    path.write_text(path.read_text().replace(str(source), str(target)))
    return path


@pytest.fixture
def staff_config(staff_config_path: Path) -> Config:
    return load_config(staff_config_path, env={})


@pytest_asyncio.fixture
async def staff_db(staff_config: Config) -> AsyncIterator[Database]:
    database = Database(staff_config.database_url)
    yield database
    await database.dispose()
