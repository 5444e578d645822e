"""The outbox form of a message: every field kept, and back to the same message."""

from __future__ import annotations

import json
from dataclasses import fields

from bot.render import from_dict, to_dict
from flows.types import Option, Outbound


def test_the_outbox_form_keeps_every_field_and_reads_back_the_same() -> None:
    message = Outbound(
        text="Which of these happened?",
        options=(Option("verbal", "Words"), Option("done", "Done")),
        multi=True,
        selected=("verbal",),
        update=True,
        request_location=True,
        clear_chat=True,
        step="what_happened",
        not_cleared=("Nothing deleted.", "1 deleted.", "{count} deleted."),
    )
    stored = json.loads(json.dumps(to_dict(message)))  # as the outbox keeps it
    assert set(stored) == {f.name for f in fields(Outbound)}
    assert from_dict(stored) == message
    assert from_dict(to_dict(Outbound(text="Hi"))) == Outbound(text="Hi")
