"""A tiny driver that makes flow tests read like transcripts: `chat.send("1")` returns what the bot said."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from bot.config import DEFAULT_SUPPORT
from flows.report import REPORT_FLOW
from flows.types import (
    Draft,
    EarlierReport,
    FlowContext,
    FlowSettings,
    Inbound,
    Location,
    Media,
    Outbound,
    Partner,
    StatusInfo,
    StepResult,
)

TODAY = date(2026, 3, 18)  # a Wednesday
NOW = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)
REFERENCE = "HC-7K3Q-9XPD"

SETTINGS = FlowSettings(
    service_name="Report Hate Townsville",
    operator="Townsville Council",
    next_steps="A member of staff will read your report within 3 working days.",
    partners=(
        Partner(id="police", name="Townsville Police", does="They can look into it and may contact you."),
        Partner(id="stophate", name="Stop Hate UK", does="They can give you support."),
    ),
    support=DEFAULT_SUPPORT,  # the built-in list from FACTS.md
)


@dataclass
class Chat:
    """One conversation with the report flow. Every `send` round-trips the draft through JSON, like storage."""

    settings: FlowSettings = SETTINGS
    channel: str = "console"
    can_clear_chat: bool = False
    language: str | None = None  # the language the platform says the person uses (Telegram, the web)
    now: datetime = NOW
    draft: Draft | None = None
    results: list[StepResult] = field(default_factory=list)
    replies: list[Outbound] = field(default_factory=list)

    def ctx(self) -> FlowContext:
        return FlowContext(
            now=self.now,
            today=self.now.date(),
            reference=REFERENCE,
            channel=self.channel,
            can_clear_chat=self.can_clear_chat,
            settings=self.settings,
            language=self.language,
        )

    def deliver(self, inbound: Inbound) -> list[str]:
        before = None if self.draft is None else json.dumps(self.draft.to_json(), sort_keys=True)
        result = REPORT_FLOW.step(self.draft, inbound, self.ctx())
        if self.draft is not None:  # the flow never mutates the draft it was given
            assert json.dumps(self.draft.to_json(), sort_keys=True) == before
        self.results.append(result)
        self.replies = list(result.replies)
        if result.erase or result.submit is not None:
            self.draft = None
        else:
            self.draft = Draft.from_json(json.loads(json.dumps(result.draft.to_json())))
        return [reply.text for reply in result.replies]

    def send(self, text: str) -> list[str]:
        return self.deliver(Inbound(text=text))

    def press(self, key: str) -> list[str]:
        return self.deliver(Inbound(option=key))

    def share(self, latitude: float, longitude: float, text: str | None = None) -> list[str]:
        return self.deliver(Inbound(location=Location(latitude, longitude, text)))

    def photo(self, ref: str, caption: str = "") -> list[str]:
        return self.deliver(Inbound(text=caption, media=(Media(ref=ref, content_type="image/jpeg"),)))

    def wait(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    def status(self, info: StatusInfo | None) -> list[str]:
        return [reply.text for reply in REPORT_FLOW.status_reply(self.draft, info, self.ctx())]

    def link(self, earlier: EarlierReport | None, *, asked: str | None = None) -> list[str]:
        """The service found (or not) the earlier report `add` asked for: what the flow answers."""
        reference = earlier.reference if earlier is not None else None
        ctx = self.ctx()
        self.draft, self.replies = REPORT_FLOW.link_reply(
            self.draft, reference, ctx, earlier=earlier, asked=asked if asked is not None else reference
        )
        return [reply.text for reply in self.replies]

    @property
    def last(self) -> Outbound:
        return self.replies[-1]

    @property
    def step(self) -> str:
        assert self.draft is not None
        return self.draft.step

    @property
    def answers(self) -> dict[str, object]:
        assert self.draft is not None
        return self.draft.answers

    @property
    def result(self) -> StepResult:
        return self.results[-1]

    def labels(self) -> list[str]:
        return [option.label for option in self.last.options]

    def keys(self) -> list[str]:
        return [option.key for option in self.last.options]

    def fork(self) -> Chat:
        """The same conversation at the same point, to go on with apart from this one: the draft copied
        as storage would (through JSON, as every `send` does), the last replies kept, the earlier results
        not (a deep copy of all of them was most of the corpus tests' time)."""
        draft = None if self.draft is None else Draft.from_json(json.loads(json.dumps(self.draft.to_json())))
        return replace(self, draft=draft, results=[], replies=list(self.replies))

    def with_settings(self, **changes: object) -> Chat:
        self.settings = replace(self.settings, **changes)  # type: ignore[arg-type]
        return self


def said(texts: list[str], *needles: str) -> bool:
    """Whether every needle appears (case-insensitively) somewhere in the bot's texts."""
    joined = "\n".join(texts).lower()
    return all(needle.lower() in joined for needle in needles)


# A plain answer for each question, for tests that only need to get somewhere.
PLAIN_ANSWERS = {
    "welcome": "Continue",
    "safety": "No",
    "role": "It happened to me",
    "someone_else_knows": "Yes",
    "org_name": "skip",
    "support_choice": "None of these",
    "what": "Verbal abuse or threats",
    "why": "Race or nationality",
    "story": "done",
    "when": "Today",
    "when_date": "yesterday",
    "when_time": "Evening",
    "where": "High Street",
    "again": "First time",
    "offender": "skip",
    "offender_known": "No",
    "offender_recognise": "No",
    "harm_hurt": "No",
    "harm_now": "No",
    "harm_property": "No",
    "witnesses": "No",
    "evidence": "done",
    "support": "No",
    "contact": "Don't contact me",
    "contact_name": "skip",
    "contact_phone": "07700 900123",
    "contact_email": "amira@example.com",
    "contact_message": "No",
    "contact_times": "skip",
    "contact_notes": "skip",
    "consent": "done",
    "record_only": "Continue",
    "review_change": "Back to my report",
}


def go_to(chat: Chat, step: str, limit: int = 60) -> Chat:
    """Answer plainly until the conversation reaches `step`."""
    if chat.draft is None:
        chat.send("hi")
    for _ in range(limit):
        if chat.step == step:
            return chat
        chat.send(PLAIN_ANSWERS[chat.step])
    raise AssertionError(f"never reached {step}; stuck at {chat.step}")
