"""The staff read side on PostgreSQL: the same conversations, exports and counts as on SQLite.

Runs when the server named by $REPORTBOT_TEST_POSTGRES_URL (default: postgres@127.0.0.1:5432) answers;
each test gets a database of its own at head (tests/conftest.py's pg_database), emptied afterwards. Skipped, with the reason, otherwise (failed under CI=true).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.config import Config
from bot.staff import Staff, selection
from storage.db import Database
from storage.schema import upgrade
from tests.conftest import pg_database, require_postgres
from tests.staff.conftest import AT_A, AT_B, AT_C
from tests.staff.conversation import ANONYMOUS, BY_PHONE, CONTACT_IN_CHAT, converse

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # whole exports on PostgreSQL: `make test` runs them


@pytest.fixture
def pg_config(make_config: Callable[..., Config]) -> Iterator[Config]:
    require_postgres()
    with pg_database() as url:
        yield make_config(database_url=url)


async def test_export_filters_and_transcripts_on_postgresql(pg_config: Config, tmp_path: Path) -> None:
    db = Database(pg_config.database_url)
    await upgrade(db)
    try:
        a = await converse(pg_config, db, CONTACT_IN_CHAT, chat_id="chat-a", at=AT_A)
        b = await converse(pg_config, db, ANONYMOUS, chat_id="chat-b", at=AT_B)
        c = await converse(pg_config, db, BY_PHONE, chat_id="chat-c", at=AT_C)
        staff = Staff(pg_config, db, who="test")

        async def refs(**filters: str) -> list[str]:
            out = tmp_path / "x.jsonl"
            await staff.export("jsonl", out, selection(pg_config, **filters))
            records = [json.loads(line) for line in out.read_text().splitlines()]
            for record in records:
                conversation = {a.reference: a, b.reference: b, c.reference: c}[record["reference"]]
                shown = "".join(
                    f"> {t['text']}\n\n" if t["direction"] == "in" else f"{t['text']}\n\n"
                    for t in record["transcript"]
                )
                assert shown == conversation.screen
            return [r["reference"] for r in records]

        assert await refs() == [a.reference, b.reference, c.reference]
        assert await refs(partner="police") == [a.reference, c.reference]
        assert await refs(partner="council") == [b.reference, c.reference]
        assert await refs(since="2026-04-03", until="2026-04-03") == [b.reference]
        assert await refs(until="2026-04-02") == [a.reference]

        counts = await staff.stats(selection(pg_config))
        assert counts.total == 3
        assert dict(counts.by_month) == {"2026-03": 1, "2026-04": 1, "2026-05": 1}
        assert counts.by_motivation["race"] == 1 and counts.by_kind["verbal"] == 1
    finally:
        await db.dispose()
