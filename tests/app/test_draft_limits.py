"""Bounded drafts (issue 13, item 4): a story, a count of messages and a count of files have a ceiling from
config; the person is told kindly what to do, and what they sent past it is still in the transcript."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select

from bot.config import Config
from bot.service import Envelope, Outcome, ReportService
from flows import catalog
from flows.types import Inbound, Media
from storage.db import Database
from storage.models import Conversation, EvidenceFetch, Report, TranscriptEntry
from tests.reporting import ANONYMOUS, CANARY_CHAT_ID, START, script


class Person:
    def __init__(self, service: ReportService) -> None:
        self.service = service
        self.i = 0

    async def send(self, text: str = "", media: tuple[Media, ...] = ()) -> Outcome:
        self.i += 1
        env = Envelope(
            "console",
            CANARY_CHAT_ID,
            Inbound(text=text, media=media),
            received_at=START + timedelta(seconds=self.i),
        )
        return await self.service.handle(env)


async def draft_of(service: ReportService) -> tuple[dict, int]:
    async with service.db.transaction() as s:
        token = (await s.execute(select(Conversation.draft_enc))).scalar_one()
    return service.cipher.decrypt_json(token), len(token)


async def transcript(service: ReportService) -> list[str]:
    async with service.db.transaction() as s:
        rows = (await s.execute(select(TranscriptEntry).order_by(TranscriptEntry.seq))).scalars()
        return [service.cipher.decrypt(r.text_enc) for r in rows if r.direction == "in"]


def said(outcome: Outcome) -> str:
    return "\n".join(r.text for r in outcome.replies)


async def test_a_flood_of_long_messages_keeps_the_draft_small(db: Database, config: Config) -> None:
    """The attack of the issue, shortened: 4,096-character messages, one after another, at the story."""
    service = ReportService(config, db)
    person = Person(service)
    for line in script(config, ANONYMOUS, until="story"):
        await person.send(line)
    told = []
    for n in range(60):
        outcome = await person.send(f"{n:04d} " + "x" * 4091)
        told.append(catalog.text("en", "service.story_full") in said(outcome))
    draft, size = await draft_of(service)
    kept = draft["answers"]["story"]
    assert sum(map(len, kept)) <= config.limits.story_characters
    assert size < 60_000, "the stored draft stays near the limit, not 60 times 4 KB"
    assert told.index(True) == len(kept) and all(told[len(kept) :]), "told at once, and every time after"
    assert len(await transcript(service)) >= 60, "every message is still in the transcript"


async def test_limits_from_config_are_told_kindly_and_nothing_is_lost(
    db: Database, make_config: Callable[..., Config]
) -> None:
    config = make_config("[limits]\nstory_characters = 100\nstory_messages = 3\nevidence_items = 2")
    service = ReportService(config, db)
    person = Person(service)
    for line in script(config, ANONYMOUS, until="story"):
        await person.send(line)
    for part in ("First part.", "Second part.", "Third part."):
        assert catalog.text("en", "service.story_full") not in said(await person.send(part))
    fourth = await person.send("Fourth part, past the limit of three messages.")
    assert said(fourth) == (
        "Your story is now as long as one report can hold, so I did not add that last message to it. "
        "Our staff can still read it in the record of this chat. Type done to go on and send this "
        "report. Then type start to begin a new report for the rest."
    )
    draft, _ = await draft_of(service)
    assert draft["answers"]["story"] == ["First part.", "Second part.", "Third part."]
    assert "Fourth part, past the limit of three messages." in await transcript(service)

    # Done goes on as usual. A single typed answer longer than the whole story may be is refused, with a
    # way on; at the evidence step the third file is refused, the first two kept.
    assert "Which of these happened? Pick all that fit" in said(
        await person.send("done")
    )  # story comes first now
    lines = script(config, ANONYMOUS)
    rest = lines[lines.index("done") + 1 :]

    async def walk_to(step: str) -> None:
        while (await draft_of(service))[0]["step"] != step:
            await person.send(rest.pop(0))

    await walk_to("offender")
    long = await person.send("y" * 101)
    assert said(long) == catalog.text("en", "service.answer_too_long")
    assert (await draft_of(service))[0]["step"] == "offender"
    await walk_to("evidence")
    for n in range(2):
        await person.send(media=(Media(f"file-{n}", "photo"),))
    third = await person.send(media=(Media("file-2", "photo"),))
    assert said(third) == catalog.text("en", "service.evidence_full")
    draft, _ = await draft_of(service)
    kept = draft["answers"]["evidence"]  # the evidence store's references; their downloads wait
    async with db.transaction() as s:
        waiting = list((await s.execute(select(EvidenceFetch).order_by(EvidenceFetch.id))).scalars())
    assert [w.ref for w in waiting] == [m["ref"] for m in kept]
    assert [service.cipher.decrypt(w.source_enc) for w in waiting] == ["file-0", "file-1"]

    # The report holds what was accepted; its transcript holds everything the person sent.
    for line in rest:
        outcome = await person.send(line)
    assert outcome.reference is not None
    async with db.transaction() as s:
        report = (await s.execute(select(Report))).scalar_one()
        entries = list((await s.execute(select(TranscriptEntry))).scalars())
    sealed = json.loads(service.cipher.decrypt(report.sealed_enc))
    assert "Fourth part" not in sealed["description"]
    assert any("Fourth part" in service.cipher.decrypt(e.text_enc) for e in entries)
