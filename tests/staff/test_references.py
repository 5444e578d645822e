"""Every staff command that takes a reference reads it the way the chat does (flows.references)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.config import Config
from storage.db import Database
from storage.models import Report
from tests.flows.test_references import LOOK_ALIKES, TYPED, with_look_alike
from tests.staff.conftest import Made
from tests.staff.conversation import converse
from tests.staff.test_reply_review import counts

LATER = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


async def status_of(db: Database, ref: str) -> str | None:
    async with db.transaction() as s:
        report = (await s.execute(select(Report).where(Report.reference == ref))).scalar_one_or_none()
        return None if report is None else report.status


@pytest.mark.parametrize(("how", "typed"), TYPED)
async def test_every_staff_command_accepts_every_form_the_chat_accepts(
    how: str,
    typed: Callable[[str], str],
    staff_config_path: Path,
    staff_config: Config,
    staff_db: Database,
    made: Made,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = made.refs[0]
    form = typed(ref)
    chat = await converse(staff_config, staff_db, [f"status {form}", form], chat_id="chat-a", at=LATER)
    assert chat.screen.count(f"Report {ref} is with us, not read yet.") == 2

    def run(*args: str) -> str:
        assert cli(staff_config_path, *args) == 0, capsys.readouterr().err
        return capsys.readouterr().out

    assert f"sent to the reporter of {ref}" in await asyncio.to_thread(run, "reply", form, "We read it.")
    assert f"{ref} is now in-progress" in await asyncio.to_thread(
        run, "review", form, "--status", "in-progress"
    )
    assert await status_of(staff_db, ref) == "in-progress"
    out = staff_config_path.parent / "one.jsonl"
    await asyncio.to_thread(run, "export", "--format", "jsonl", "--out", str(out), "--reference", form)
    assert [json.loads(line)["reference"] for line in out.read_text().splitlines()] == [ref]
    audit = await asyncio.to_thread(run, "audit", "--reference", form)
    assert [line.split("\t")[2] for line in audit.splitlines()] == ["export", "review", "reply"]
    assert f"erased {ref}" in await asyncio.to_thread(run, "erase", form)
    assert await status_of(staff_db, ref) is None


@pytest.mark.parametrize("char", LOOK_ALIKES)
async def test_every_staff_command_refuses_a_look_alike_and_changes_nothing(
    char: str,
    staff_config_path: Path,
    staff_db: Database,
    made: Made,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ref = made.refs[0]
    wrong = with_look_alike(ref, char)
    out = staff_config_path.parent / "none.jsonl"
    before = await counts(staff_db)
    for args in (
        ("reply", wrong, "We read it."),
        ("review", wrong, "--status", "closed"),
        ("export", "--format", "jsonl", "--out", str(out), "--reference", wrong),
        ("audit", "--reference", wrong),
        ("erase", wrong),
    ):
        assert await asyncio.to_thread(cli, staff_config_path, *args) == 1, args
        captured = capsys.readouterr()
        assert f"{wrong!r} is not a report reference" in captured.err, args
        assert "never use 0, O, 1, I or L" in captured.err
        assert captured.out == ""
    assert await counts(staff_db) == before
    assert await status_of(staff_db, ref) == "new"
    assert not out.exists()
