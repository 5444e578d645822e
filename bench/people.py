"""What a simulated person types to make a whole report on Telegram (typed answers, no buttons needed)."""

from __future__ import annotations

# Someone reporting for a neighbour, contact here in this chat (so the report keeps its link to the chat,
# which lets a checker find it), shared with the first partner, sent. `{story}` carries a unique marker.
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


def script(story: str) -> list[str]:
    """The report script with this story."""
    return [story if line == "{story}" else line for line in REPORT_SCRIPT]
