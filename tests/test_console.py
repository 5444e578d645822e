"""The whole core, end to end on the console channel: `reportbot chat` with a scripted stdin, the service's
one step, encrypted SQLite storage and the outbox. These read like the transcripts a person would see."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import Config
from bot.console import run_console
from storage.crypto import Cipher
from storage.db import Database
from storage.models import Conversation, OutboxMessage, Report, TranscriptEntry
from tests.conftest import raw_database_bytes

REFERENCE = re.compile(r"HC-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}")

# A victim who wants to be contacted by phone, shares with the police, and sends.
VICTIM = [
    "1",  # welcome: continue
    "no",  # not in danger now
    "1",  # it happened to me
    "CANARY-STORY-7Q4 A man shouted at me at the bus stop.",
    "done",
    "1 3",  # verbal abuse, damage to property
    "race",
    "yesterday",
    "evening",
    "CANARY-PLACE-8R2 High Street bus stop",
    "first time",
    "CANARY-OFFENDER-3K9 tall man in a grey coat",
    "no",  # do not know them
    "yes",  # would recognise them
    "no",  # nobody hurt
    "yes",  # something damaged
    "no",  # no witnesses
    "skip",  # no evidence
    "no",  # no support service
    "2",  # by phone or email
    "Canary Namesake",
    "07700 900123",
    "evenings",
    "skip",
    "police",
    "send",
]


async def chat(config: Config, lines: list[str], chat_id: str = "local") -> str:
    """Run one console session over these lines and return everything it printed."""
    out = io.StringIO()
    code = await run_console(
        config, io.StringIO("".join(f"{line}\n" for line in lines)), out, chat_id=chat_id
    )
    assert code == 0
    return out.getvalue()


async def stored(config: Config) -> tuple[list[Report], int, int]:
    db = Database(config.database_url)
    try:
        async with db.transaction() as s:
            reports = list((await s.execute(select(Report))).scalars())
            conversations = len(list((await s.execute(select(Conversation))).scalars()))
            pending = len(
                list(
                    (await s.execute(select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))).scalars()
                )
            )
    finally:
        await db.dispose()
    return reports, conversations, pending


async def test_a_victim_reports_and_nothing_they_typed_is_stored_in_clear(config: Config) -> None:
    out = await chat(config, VICTIM, chat_id="CHATID-CANARY-555000111")
    assert "Hello. This is Report Hate" in out
    assert "Is it happening now?" in out
    assert "Here is your report" in out
    refs = set(REFERENCE.findall(out.split("Your report has been sent")[1]))
    assert len(refs) == 1, out[-800:]

    reports, conversations, pending = await stored(config)
    assert [r.reference for r in reports] == list(refs)
    report = reports[0]
    assert report.role == "victim"
    assert report.incident_types == ["verbal", "property"]
    assert report.motivations == ["race"]
    assert report.anonymous is False
    assert report.share_with == ["police"]
    assert report.chat_key is None  # contact by phone, not in this chat: no link to the chat is kept
    assert conversations == 0 and pending == 0  # the draft is gone and every reply was delivered

    cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
    sealed = cipher.decrypt_json(report.sealed_enc)
    assert sealed["description"].startswith("CANARY-STORY-7Q4")
    assert sealed["contact"]["name"] == "Canary Namesake"
    assert sealed["contact"]["phone"].replace(" ", "").endswith("7700900123")

    raw = raw_database_bytes(config)
    assert len(raw) > 10_000
    for canary in (b"CANARY", b"Canary Namesake", b"7700900123", b"7700 900123", b"555000111", b"bus stop"):
        assert canary not in raw, canary


async def test_an_anonymous_witness_leaves_no_link_to_the_chat(config: Config) -> None:
    lines = [
        "1",
        "no",
        "2",
        "I saw a woman being shouted at.",
        "done",
        "1",
        "done",
        "religion",
        "today",
        "skip",
    ]
    lines += [
        "Market Square",
        "3",
        "skip",
        "skip",
        "skip",
        "skip",
        "skip",
        "skip",
        "skip",
        "no",
        "3",
        "3",
        "done",
        "send",
    ]
    out = await chat(config, lines, chat_id="witness-chat")
    # The honest limits of anonymity on a messaging app (FACTS.md)
    limits = out.split("> 3")[-2]
    assert "can still see your account and your messages" in limits
    assert "may not be able to look into it fully" in limits
    assert "Contact: Don't contact me" in out
    reports, conversations, _ = await stored(config)
    assert len(reports) == 1, out[-1500:]
    report = reports[0]
    assert report.role == "witness"
    assert report.anonymous is True
    assert report.chat_key is None and report.reply_address_enc is None
    assert conversations == 0


async def test_contact_in_this_chat_keeps_an_encrypted_reply_address(config: Config) -> None:
    lines = [
        "1",
        "no",
        "3",
        "yes",
        "My neighbour is called names.",
        "done",
        "1",
        "done",
        "disability",
        "not sure",
    ]
    lines += [
        "skip",
        "2",
        "skip",
        "skip",
        "skip",
        "skip",
        "skip",
        "skip",
        "skip",
        "no",
        "1",
        "1",
        "done",
        "send",
    ]
    out = await chat(config, lines, chat_id="reply-here-42")
    reports, _, _ = await stored(config)
    assert len(reports) == 1, out[-1500:]
    report = reports[0]
    assert report.role == "someone_else"
    cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
    assert report.chat_key == cipher.pseudonym("console", "reply-here-42")
    assert report.reply_address_enc is not None
    assert cipher.decrypt(report.reply_address_enc) == "reply-here-42"
    assert cipher.decrypt_json(report.sealed_enc)["someone_else_knows"] == "yes"


async def test_a_restart_mid_conversation_resumes_at_the_same_question(config: Config) -> None:
    first = await chat(config, ["1", "no", "1", "CANARY-RESTART story part one"])
    assert first.rstrip().endswith(
        "Is there more you want to add? Send it, or choose Done.\n\n1. Done\n2. Skip"
    )
    # A new process: new engine, new service. The draft must come back from the database.
    second = await chat(config, [])
    assert second.rstrip().endswith("1. Continue\n2. Start again"), second
    third = await chat(
        config,
        ["continue", "done", "1", "done", "race", "today", "skip", "skip", "1"]
        + ["skip"] * 8
        + ["3", "3", "done", "send"],
    )
    assert "Is there more you want to add?" in third.split("> continue")[1].lstrip().split("\n")[0]
    reports, _, _ = await stored(config)
    assert len(reports) == 1, third[-1500:]
    cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
    assert cipher.decrypt_json(reports[0].sealed_enc)["description"] == "CANARY-RESTART story part one"
    assert reports[0].motivations == ["race"] and reports[0].incident_types == ["verbal"]


async def test_stop_erases_the_draft_and_its_transcript(config: Config) -> None:
    out = await chat(config, ["1", "no", "1", "CANARY-STOPPED words I regret", "stop"])
    assert "deleted" in out.lower()
    reports, conversations, _ = await stored(config)
    assert reports == [] and conversations == 0
    db = Database(config.database_url)
    try:
        async with db.transaction() as s:
            assert list((await s.execute(select(TranscriptEntry))).scalars()) == []
    finally:
        await db.dispose()
    assert b"CANARY-STOPPED" not in raw_database_bytes(config)


def run_reportbot(config_path: Path, script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(config_path), "chat"],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_reportbot_chat_piped_completes_a_report_and_a_second_run_finds_it(
    config_path: Path, tmp_path: Path
) -> None:
    first = run_reportbot(config_path, "\n".join(VICTIM) + "\n", tmp_path)
    assert first.returncode == 0, first.stderr
    refs = REFERENCE.findall(first.stdout.split("Your report has been sent")[-1])
    assert refs, first.stdout[-1000:]
    reference = refs[0]
    assert "CANARY" not in first.stderr  # nothing typed reaches the logs

    second = run_reportbot(config_path, f"status {reference.lower()}\nstatus HC-2222-3333\n", tmp_path)
    assert second.returncode == 0, second.stderr
    after = second.stdout.split(f"> status {reference.lower()}")[1]
    found, missing = after.split("> status HC-2222-3333")
    assert reference in found
    assert "is with us, not read yet" in found
    assert re.search(r"(?i)could not find", missing)
    assert reference not in missing


def test_docs_flow_is_the_diagram_the_machine_draws() -> None:
    from bot.cli import flow_markdown
    from flows.report import REPORT_FLOW

    committed = (Path(__file__).parent.parent / "docs" / "flow.md").read_text(encoding="utf-8")
    assert committed == flow_markdown(REPORT_FLOW.mermaid()), "docs/flow.md is stale: run `make flow`"
    assert "emergency" in committed and "review" in committed


async def test_a_fault_in_the_flow_gets_an_apology_and_keeps_the_answers(config: Config) -> None:
    from bot.service import Envelope, ReportService
    from flows.engine import Flow
    from flows.report import REPORT_FLOW
    from flows.types import Inbound

    class FaultyFlow(Flow):
        """The real flow, except that one particular answer hits a bug."""

        def step(self, draft, inbound, ctx):  # type: ignore[no-untyped-def]
            if inbound.text == "trigger the bug":
                raise KeyError("a bug")
            return REPORT_FLOW.step(draft, inbound, ctx)

    faulty = FaultyFlow.__new__(FaultyFlow)
    faulty.__dict__.update(REPORT_FLOW.__dict__)
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db, flow=faulty)
    try:
        for text in ["start", "1", "no"]:
            await service.handle(Envelope("console", "c1", Inbound(text=text)))
        broken = await service.handle(
            Envelope("console", "c1", Inbound(text="trigger the bug"), delivery_id="d1")
        )
        assert [r.text for r in broken.replies] == [
            "Sorry, something went wrong on our side. Your answers so far are safe. Please send that again, or type help."
        ]
        repeat = await service.handle(
            Envelope("console", "c1", Inbound(text="trigger the bug"), delivery_id="d1")
        )
        assert repeat.duplicate  # recorded: a webhook retry of the same update does not loop on the bug
        after = await service.handle(Envelope("console", "c1", Inbound(text="1")))
        assert after.step == "story"  # the answers so far were kept and the flow goes on
    finally:
        await db.dispose()
