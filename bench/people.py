"""What a simulated person sends to make a whole report on Telegram.

Two scripts of the same report (someone reporting for a neighbour, contact here in this chat so that the
report keeps its link to the chat, shared with the first partner, sent):

- `REALISTIC`: as people make it on a phone, 28 updates of which 22 are button presses and 6 typed where
  a person types (the start, the story, when, where, who did it). `realistic()` walks the real flow once
  and takes each press's `callback_data` from the keyboard the Telegram sender renders for that question
  (`bot.channels.telegram.send.inline_keyboard`), with the question's text and keyboard as Telegram puts
  them in the callback query's message.
- `REPORT_SCRIPT`: every answer typed (no buttons), the shape the bench used before issue 17.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Every answer typed. `{story}` carries a unique marker.
REPORT_SCRIPT: tuple[str, ...] = (
    "/start",
    "1",  # welcome: continue
    "no",  # not happening now
    "3",  # for someone else
    "yes",  # they know
    "{story}",  # in their own words first
    "done",
    "1",  # verbal abuse: ticked
    "done",
    "disability",
    "not sure",  # when
    "skip",  # where
    "2",  # has happened before
    "skip",  # offender
    "skip",
    "skip",
    "skip",
    "skip",
    "skip",
    "skip",  # evidence
    "no",  # no support service
    "1",  # contact here in this chat
    "1",  # share with the first partner: ticked
    "done",
    "send",
)

# ("press", option key) or ("type", text): the same report as a person makes it with the buttons.
REALISTIC: tuple[tuple[str, str], ...] = (
    ("type", "/start"),
    ("press", "continue"),  # welcome
    ("press", "no"),  # not happening now
    ("press", "someone_else"),  # for a neighbour
    ("press", "yes"),  # they know
    ("type", "{story}"),
    ("type", "It is the second time this month."),
    ("press", "done"),
    ("press", "verbal"),  # what: a multi-select, each press edits the question
    ("press", "physical"),
    ("press", "done"),
    ("press", "disability"),  # why
    ("press", "done"),
    ("type", "last Tuesday evening"),  # when
    ("type", "outside the shop on High Street"),  # where
    ("press", "before"),  # has happened before
    ("type", "a man in a red coat, about 40"),  # offender
    ("press", "no"),  # offender known
    ("press", "no"),  # would recognise
    ("press", "no"),  # hurt
    ("press", "no"),  # property
    ("press", "yes"),  # witnesses
    ("press", "skip"),  # evidence
    ("press", "no"),  # support service
    ("press", "chat"),  # contact here in this chat
    ("press", "police"),  # share with the first partner
    ("press", "done"),
    ("press", "send"),
)


def script(story: str) -> list[str]:
    """The typed report script with this story."""
    return [story if line == "{story}" else line for line in REPORT_SCRIPT]


@dataclass(frozen=True)
class Turn:
    """One update of the realistic script: typed text, or a press with its real callback data and the
    question (text and keyboard) the button was on."""

    text: str | None = None
    data: str | None = None
    question: str = ""
    markup: dict[str, Any] | None = None

    def typed(self, story: str) -> str:
        assert self.text is not None
        return story if self.text == "{story}" else self.text


def realistic(settings: Any) -> list[Turn]:
    """`REALISTIC` walked through the real flow (with this deployment's `FlowSettings`): each press is
    checked against the keyboard of the question it answers, and carries that keyboard's callback data."""
    from bot.channels.telegram.send import inline_keyboard
    from flows.report import REPORT_FLOW
    from flows.types import Draft, FlowContext, Inbound, Outbound

    now = datetime.now(UTC)
    ctx = FlowContext(
        now=now,
        today=now.date(),
        reference="BENCH-1",
        passphrase="bench",
        channel="telegram",
        can_clear_chat=True,
        settings=settings,
    )
    draft: Draft | None = None
    asked: Outbound | None = None
    turns: list[Turn] = []
    for kind, value in REALISTIC:
        if kind == "type":
            turns.append(Turn(text=value))
            inbound = Inbound(text="A story." if value == "{story}" else value)
        else:
            if asked is None or value not in {o.key for o in asked.options}:
                raise ValueError(f"no button {value!r} on the question asked ({asked and asked.step})")
            markup = inline_keyboard(asked).to_dict()
            row = [o.key for o in asked.options].index(value)  # one button a row
            data = markup["inline_keyboard"][row][0]["callback_data"]
            turns.append(Turn(data=data, question=asked.text, markup=markup))
            inbound = Inbound(option=value)
        result = REPORT_FLOW.step(draft, inbound, ctx)
        draft = result.draft
        asked = next((m for m in reversed(result.replies) if m.options), asked)
    if draft is None or draft.step != REPORT_FLOW.final:
        raise ValueError(f"the realistic script does not send the report (ends at {draft and draft.step})")
    return turns
