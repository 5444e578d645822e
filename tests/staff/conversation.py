"""Reports made the way people make them: a scripted conversation through the console channel.

Each line goes through the real service step (storage, flow, transcript, outbox) and the outbox is
delivered by the real console sender, exactly as `reportbot chat` does, only at a chosen time.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.channels.console.chat import CHANNEL, ConsoleSender
from bot.config import Config
from bot.delivery import Outbox
from bot.service import Envelope, ReportService
from flows.types import Inbound
from storage.db import Database

REFERENCE = re.compile(r"Your reference is (HC-[A-Z0-9]{4}-[A-Z0-9]{4})")

# Steps up to the story, then a description that a spreadsheet would run as a formula.
OPENING = ["start", "continue", "no"]

CONTACT_IN_CHAT = [
    *OPENING,
    "It happened to me",
    '=HYPERLINK("http://evil.example","click") He shouted at me outside the shop.',
    "Then he kicked my bike over.",
    "done",
    "1 3",  # verbal abuse, damage to property
    "1",  # race or nationality: ticked
    "done",
    "1",  # today
    "3",  # evening
    "High Street, Townsville",
    "1",  # first time
    "Tall man in a red coat",
    "2",  # don't know them
    "1",  # would recognise
    "2",  # nobody hurt
    "1",  # property damaged
    "1",  # witnesses: yes
    "done",  # no evidence
    "1",  # support: yes
    "1",  # contact me here in this chat
    "1",  # consent: the police, ticked
    "done",
    "1",  # send
]

BY_PHONE = [
    *OPENING,
    "3",  # for someone else
    "1",  # they know
    "-1 stars for the bus driver who pushed my brother off the bus.",
    "done",
    "2",  # physical attack, ticked
    "done",
    "4",  # disability, ticked
    "done",
    "3",  # another date
    "02/03/2026",
    "2",  # afternoon
    "Bus station, Market Road",
    "3",  # keeps happening
    "skip",
    "skip",
    "skip",
    "1",  # hurt: yes
    "2",  # nobody needs a doctor now
    "skip",
    "skip",
    "skip",
    "skip",
    "2",  # by phone
    "Sam Jones",
    "07700 900123",
    "After 6pm",
    "2",  # not safe to leave a message
    "Please don't leave voicemail",
    "1 2",  # police and council
    "1",  # send
]

ANONYMOUS = [
    *OPENING,
    "2",  # I saw it happen
    "+44 crowd shouting at a woman in a headscarf <script>alert(1)</script>, @everyone laughed",
    "done",
    "4",  # online abuse, ticked
    "done",
    "2",  # religion or belief, ticked
    "done",
    "2",  # yesterday
    "skip",
    "skip",
    "2",  # happened before
    "skip",
    "skip",
    "skip",
    "skip",
    "skip",
    "skip",
    "skip",
    "2",  # support: no
    "5",  # don't contact me
    "2",  # consent: the council, ticked
    "done",
    "1",  # send
]


@dataclass
class Conversation:
    """What the person saw, and the reference if the conversation submitted a report."""

    screen: str
    reference: str | None


async def converse(
    config: Config, db: Database, lines: Sequence[str | Inbound], *, chat_id: str, at: datetime
) -> Conversation:
    """Send each line (or a message with a photo) as the person would, at time `at`; return what the
    console showed."""
    service = ReportService(config, db)
    outbox = Outbox(db, service.store, lock=service.sqlite_writer)
    screen = io.StringIO()
    sender = ConsoleSender(screen, terminal=False)
    reference = None
    for line in lines:
        inbound = Inbound(text=line) if isinstance(line, str) else line
        screen.write(f"> {inbound.text or '(a file)'}\n\n")
        outcome = await service.handle(
            Envelope(CHANNEL, chat_id, inbound, delivery_id=uuid.uuid4().hex, received_at=at)
        )
        await outbox.drain(sender)
        reference = outcome.reference or reference
    text = screen.getvalue()
    found = REFERENCE.search(text)
    assert (found.group(1) if found else None) == reference, text[-2000:]
    return Conversation(screen=text, reference=reference)
