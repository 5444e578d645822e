"""Whole conversations through the real service, for storage tests: scripts a person would type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from bot.config import Config
from bot.service import Envelope, Outcome, ReportService
from flows.types import Inbound
from tests.flows.chat import PLAIN_ANSWERS, Chat

START = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)

CANARY_STORY = "Canary story: Zebedee Quillfeather spat at me by the canal"
CANARY_NAME = "Zebedee Quillfeather"
CANARY_PHONE = "07700 900461"
CANARY_PHONE_E164 = "+447700900461"
CANARY_CHAT_ID = "884422117733"

ANONYMOUS = {"story": [CANARY_STORY, "done"], "contact": ["Don't contact me"], "review": ["Send report"]}
IN_CHAT = {
    "story": [CANARY_STORY, "done"],
    "contact": ["Here in this chat"],
    "contact_name": [CANARY_NAME],
    "review": ["Send report"],
}
BY_PHONE = {
    "story": [CANARY_STORY, "done"],
    "contact": ["Phone call"],
    "contact_name": [CANARY_NAME],
    "contact_phone": [CANARY_PHONE],
    "review": ["Send report"],
}


def script(config: Config, answers: Mapping[str, Sequence[str]], *, until: str | None = None) -> list[str]:
    """What a person types, from "hi" to the end (or to step `until`), answering `answers` where given."""
    chat = Chat(settings=config.flow_settings())
    left = {step: list(values) for step, values in answers.items()}
    typed = ["hi"]
    chat.send("hi")
    for _ in range(80):
        if chat.draft is None:
            return typed
        if until is not None and chat.step == until:
            return typed
        queue = left.get(chat.step)
        text = queue.pop(0) if queue else PLAIN_ANSWERS[chat.step]
        typed.append(text)
        chat.send(text)
    raise AssertionError("the script never ended")


async def converse(
    service: ReportService,
    lines: Sequence[str],
    *,
    chat_id: str = CANARY_CHAT_ID,
    channel: str = "console",
    start: datetime = START,
    delivery_prefix: str | None = None,
) -> list[Outcome]:
    """Send each line through the service's one step, a second apart."""
    outcomes = []
    for i, text in enumerate(lines):
        env = Envelope(
            channel,
            chat_id,
            Inbound(text=text),
            delivery_id=f"{delivery_prefix}-{i}" if delivery_prefix else None,
            received_at=start + timedelta(seconds=i),
        )
        outcomes.append(await service.handle(env))
    return outcomes
