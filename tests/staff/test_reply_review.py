"""Staff replies and reviews, and what the reporter then sees when they ask `status <reference>` in the chat."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.config import Config
from storage.db import Database
from storage.models import AuditEvent, OutboxMessage, Report, TranscriptEntry
from tests.conftest import raw_database_bytes
from tests.staff.conftest import Made
from tests.staff.conversation import converse

LATER = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
WORDS = "We have passed your report to the police. An officer will call you this week."


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


async def counts(db: Database) -> tuple[int, int, int]:
    """Outbox messages, transcript lines and audit events."""
    async with db.transaction() as s:
        return (
            int((await s.execute(select(func.count()).select_from(OutboxMessage))).scalar() or 0),
            int((await s.execute(select(func.count()).select_from(TranscriptEntry))).scalar() or 0),
            int((await s.execute(select(func.count()).select_from(AuditEvent))).scalar() or 0),
        )


async def test_reply_reaches_the_reporter_chat_and_status_shows_it(
    staff_config_path: Path,
    staff_config: Config,
    staff_db: Database,
    made: Made,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = made.refs[0]
    assert await asyncio.to_thread(cli, staff_config_path, "reply", ref, WORDS) == 0
    out = capsys.readouterr().out
    # The console channel's sender prints what the reporter receives, then the command says it was sent.
    assert out == (
        f"A message from our team about your report {ref}:\n\n{WORDS}\n\n"
        f"reportbot reply: sent to the reporter of {ref}\n"
    )
    async with staff_db.transaction() as s:
        report = (await s.execute(select(Report).where(Report.reference == ref))).scalar_one()
        sent = list(
            (await s.execute(select(OutboxMessage).where(OutboxMessage.report_id == report.id))).scalars()
        )
        events = list((await s.execute(select(AuditEvent))).scalars())
    assert [m.sent_at is not None for m in sent][-1]
    assert [(e.action, e.reference, e.count) for e in events] == [("reply", ref, 1)]
    assert WORDS.encode() not in raw_database_bytes(staff_config), "the reply is stored encrypted"

    # The reply is now the last line of the exported transcript, marked as staff.
    jsonl = staff_config_path.parent / "t.jsonl"
    assert (
        await asyncio.to_thread(
            cli, staff_config_path, "export", "--format", "jsonl", "--out", str(jsonl), "--reference", ref
        )
        == 0
    )
    [record] = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert record["transcript"][-1] == {
        "at": record["transcript"][-1]["at"],
        "direction": "out",
        "author": "staff",
        "text": WORDS,
    }

    # In the chat, the reporter asks for news and sees the reply.
    chat = await converse(staff_config, staff_db, [f"status {ref.lower()}"], chat_id="chat-a", at=LATER)
    assert f"Report {ref} is with us, not read yet." in chat.screen
    assert f"A message from our staff: {WORDS}" in chat.screen


async def test_reply_to_an_anonymous_report_is_refused_and_changes_nothing(
    staff_config_path: Path, staff_db: Database, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await counts(staff_db)
    assert await asyncio.to_thread(cli, staff_config_path, "reply", made.refs[1], WORDS) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"reportbot reply: {made.refs[1]} is anonymous: the reporter asked not to be contacted, and no way "
        "back to them is kept. Nothing was sent.\n"
    )
    assert await counts(staff_db) == before


async def test_reply_to_someone_who_asked_for_a_phone_call_points_to_the_export(
    staff_config_path: Path, staff_db: Database, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await counts(staff_db)
    assert await asyncio.to_thread(cli, staff_config_path, "reply", made.refs[2], WORDS) == 1
    err = capsys.readouterr().err
    assert "did not ask to be contacted in the chat" in err and "phone or email" in err
    assert await counts(staff_db) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("reply", "HC-2222-2222", "hello"), "no report has the reference HC-2222-2222"),
        (("reply", "12345", "hello"), "'12345' is not a report reference"),
        (("review", "HC-2222-2222", "--status", "closed"), "no report has the reference HC-2222-2222"),
    ],
)
async def test_unknown_references_are_refused(
    staff_config_path: Path,
    staff_db: Database,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    before = await counts(staff_db)
    assert await asyncio.to_thread(cli, staff_config_path, *args) == 1
    assert message in capsys.readouterr().err
    assert await counts(staff_db) == before


async def test_an_empty_reply_is_refused(
    staff_config_path: Path, staff_db: Database, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await counts(staff_db)
    assert await asyncio.to_thread(cli, staff_config_path, "reply", made.refs[0], "   ") == 1
    assert "the message is empty" in capsys.readouterr().err
    assert await counts(staff_db) == before


async def test_review_status_shows_in_the_chat_and_in_exports(
    staff_config_path: Path,
    staff_config: Config,
    staff_db: Database,
    made: Made,
    capsys: pytest.CaptureFixture[str],
) -> None:
    anonymous = made.refs[1]
    note = "Passed to the council's housing team"
    assert (
        await asyncio.to_thread(
            cli, staff_config_path, "review", anonymous, "--status", "in-progress", "--note", note
        )
        == 0
    )
    assert capsys.readouterr().out == f"reportbot review: {anonymous} is now in-progress (was new)\n"

    # The anonymous reporter kept the reference as a receipt; it works from any chat, even a new one.
    chat = await converse(staff_config, staff_db, [f"status {anonymous}"], chat_id="a-new-phone", at=LATER)
    assert f"Report {anonymous} is being looked at." in chat.screen
    assert note not in chat.screen, "staff notes are for colleagues, not for the reporter"

    assert await asyncio.to_thread(cli, staff_config_path, "review", anonymous, "--status", "closed") == 0
    chat = await converse(staff_config, staff_db, [f"status {anonymous}"], chat_id="a-new-phone", at=LATER)
    assert f"Report {anonymous} is closed." in chat.screen

    out = staff_config_path.parent / "r.jsonl"
    assert (
        await asyncio.to_thread(cli, staff_config_path, "export", "--format", "jsonl", "--out", str(out)) == 0
    )
    records = {r["reference"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records[anonymous]["status"] == "closed"
    assert [(n["status"], n["text"]) for n in records[anonymous]["staff_notes"]] == [("in-progress", note)]
    assert records[made.refs[0]]["status"] == "new"
    async with staff_db.transaction() as s:
        events = list((await s.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars())
    assert [(e.action, e.reference, e.detail) for e in events if e.action == "review"] == [
        ("review", anonymous, "status new -> in-progress; note added"),
        ("review", anonymous, "status in-progress -> closed"),
    ]
    assert note.encode() not in raw_database_bytes(staff_config)


async def test_status_of_a_reference_that_does_not_exist_says_only_not_found(
    staff_config: Config, staff_db: Database
) -> None:
    chat = await converse(staff_config, staff_db, ["status HC-2222-2222"], chat_id="someone", at=LATER)
    status_part = chat.screen.split("> status HC-2222-2222\n\n", 1)[1]
    assert status_part.startswith("We could not find that reference.\n\n")
    assert "HC-2222-2222" not in status_part


def test_review_refuses_an_unknown_status(
    staff_config_path: Path, made: Made, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(staff_config_path, "review", made.refs[0], "--status", "done")
    assert exit_info.value.code == 2
    assert "invalid choice: 'done'" in capsys.readouterr().err
