"""Support services that become recipients, and answers to staff that stay with their report: through the
real service step, storage and the staff commands (console channel; issue 15)."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.channels.console.chat import ConsoleSender
from bot.cli import main
from bot.config import Config
from bot.service import ReportService
from bot.staff import Staff
from storage.db import Database
from storage.models import Report
from tests.conftest import PARTNERS_TOML, write_config
from tests.reporting import START, converse, script

HIJAB = "A man pulled my hijab on the bus and called me a terrorist."
STAFF_WORDS = "Hello, this is Sam from the council. We have read your report."


@pytest.fixture
def config_path(tmp_path: Path, database_url: str | None) -> Path:
    """The test config's partners, and no [[support]] table: the built-in list from FACTS.md."""
    path = write_config(tmp_path, database_url=database_url)
    support = PARTNERS_TOML[PARTNERS_TOML.index("[[support]]") :]
    path.write_text(path.read_text().replace(support, ""))
    return path


MUSLIM_WOMAN = {
    "role": ["It happened to me"],
    "story": [HIJAB, "done"],
    "what": ["physical attack"],
    "why": ["because I'm Muslim"],
    "support": ["yes please"],
    "support_choice": ["tell mama"],
    "contact": ["message me here"],
    "consent": ["done"],
    "review": ["Send report"],
}


async def exported(config_path: Path, tmp_path: Path, *options: str) -> list[dict[str, Any]]:
    """`reportbot export --format jsonl`, run as staff run it (its own event loop, in a thread here)."""
    out = tmp_path / "out.jsonl"
    args = ["--config", str(config_path), "export", "--format", "jsonl", "--out", str(out), *options]
    assert await asyncio.to_thread(main, args) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


async def test_tell_mama_chosen_for_support_receives_the_report_by_partner_export(
    config: Config, config_path: Path, db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = ReportService(config, db)
    outcomes = await converse(service, script(config, MUSLIM_WOMAN))
    reference = outcomes[-1].reference
    assert reference is not None
    done = "\n".join(reply.text for reply in outcomes[-1].replies)
    assert "Tell MAMA, for anti-Muslim hate: 0800 456 1226" in done and "Victim Support" in done
    assert "Our staff will pass your report to Tell MAMA" in done and "has been sent" not in done
    [record] = await exported(config_path, tmp_path, "--partner", "tellmama")
    assert record["reference"] == reference and record["share_with"] == ["tellmama"]
    assert record["description"] == HIJAB and record["support_requested"] is True
    assert record["contact"] == {
        "name": None,
        "phone": None,
        "email": None,
        "in_chat": True,
        "safe_times": None,
        "notes": None,
        "by": "chat",
        "leave_message": None,
        "no_calls": False,
    }
    assert await exported(config_path, tmp_path, "--partner", "police") == []  # she did not pick the police
    html = tmp_path / "out.html"
    args = ["--config", str(config_path), "export", "--format", "html", "--out", str(html)]
    assert await asyncio.to_thread(main, args) == 0
    assert "Tell MAMA" in html.read_text()  # staff see the service's name, not only its id


async def test_thank_you_after_a_staff_reply_goes_to_that_report_not_a_new_one(
    config: Config, db: Database, tmp_path: Path
) -> None:
    service = ReportService(config, db)
    outcomes = await converse(service, script(config, MUSLIM_WOMAN))
    reference = outcomes[-1].reference
    assert reference is not None
    staff = Staff(config, db, who="tester", senders=lambda _: ConsoleSender(io.StringIO(), terminal=False))
    await staff.reply(reference, STAFF_WORDS, now=START + timedelta(hours=2))

    [thanks] = await converse(service, ["thank you"], start=START + timedelta(hours=3))
    assert thanks.reference is None and thanks.step is None
    assert [r.text for r in thanks.replies] == [
        f"Thank you. We have added your message to your report {reference}. Our staff will read it. "
        "To start a new report, type start."
    ]
    async with db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(Report))).scalar() == 1
    records = [r async for r in staff_records(config, db)]
    transcript = records[0]["transcript"]
    assert [(t["direction"], t["text"]) for t in transcript[-3:]] == [
        ("out", STAFF_WORDS),
        ("in", "thank you"),
        ("out", thanks.replies[0].text),
    ]
    # `reportbot reply` goes on with the same thread.
    result = await staff.reply(reference, "You are welcome.", now=START + timedelta(hours=4))
    assert result.delivered

    # After the window (72 hours by default), or with "start", it is a new conversation again.
    [later] = await converse(service, ["thank you"], start=START + timedelta(hours=4 + 73))
    assert later.step == "welcome" or later.step == "safety"
    [fresh] = await converse(service, ["start"], chat_id="someone-else", start=START + timedelta(hours=5))
    assert fresh.step == "welcome"


async def test_an_anonymous_report_gets_no_thread(config: Config, db: Database) -> None:
    anonymous = {**MUSLIM_WOMAN, "contact": ["don't contact me"]}
    service = ReportService(config, db)
    outcomes = await converse(service, script(config, anonymous))
    assert outcomes[-1].reference is not None
    [next_message] = await converse(service, ["thank you"], start=START + timedelta(hours=1))
    assert next_message.step is not None  # the flow answered: no report kept a way back to this chat


async def staff_records(config: Config, db: Database):  # type: ignore[no-untyped-def]
    from storage.crypto import Cipher
    from storage.export import ReportQuery, iter_reports

    cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
    async for record in iter_reports(db, cipher, ReportQuery()):
        yield record
