"""A new report that says it is about something reported before (issue 18): at the start, "it's the same man
again" asks the service for this chat's last report (`link_query` ""); anything else starts as usual.
The corpus is `tests/flows/own_words/series.toml`."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from flows.types import ContactDetails, EarlierReport, Offender
from tests.flows.chat import Chat, go_to

CORPUS = tomllib.loads((Path(__file__).parent / "own_words" / "series.toml").read_text("utf-8"))["replies"]
EARLIER = EarlierReport(
    reference="HC-7K3Q-9XPD",
    role="victim",
    offender=Offender(description="My neighbour at number 4", known="yes"),
    contact=ContactDetails(in_chat=True, by="chat"),
)


@pytest.mark.parametrize(("text", "meaning"), CORPUS.items())
def test_words_at_the_start_that_mean_the_same_again(text: str, meaning: str) -> None:
    chat = Chat()
    chat.send(text)
    asked = chat.result.link_query
    assert (asked == "") if meaning == "add" else (asked is None), (text, asked)


def test_the_same_words_later_in_the_conversation_are_part_of_the_story() -> None:
    chat = go_to(Chat(), "story")
    chat.send("its the same man again")
    assert chat.result.link_query is None and chat.answers["story"] == ["its the same man again"]


def test_a_joined_report_shows_the_earlier_answers_and_asks_only_what_changed() -> None:
    chat = Chat()
    chat.send("it's the same neighbour again")
    shown = chat.link(EARLIER, asked="")
    assert shown[0] == (
        "This new report will be joined to your report HC-7K3Q-9XPD. We will ask about what happened this time."
    )
    chat.send("Continue")
    shown = chat.send("no")  # safe now
    assert shown[-1].startswith("Last time you told us:")
    assert "Who did it: My neighbour at number 4" in shown[-1] and shown[-1].endswith("Is this still right?")
    chat.send("yes")
    assert chat.step == "story"
    asked = []
    for answer in (
        "He threw eggs at my door.",
        "done",
        "3",
        "done",
        "1",
        "done",
        "1",
        "3",
        "Flat 2, Elm Road",
    ):
        chat.send(answer)
        asked.append(chat.step)
    assert "offender" not in asked and "again" not in asked, "who did it is not asked again"
    for answer in ("2", "1", "2", "done"):  # nobody hurt, property damaged, no witnesses, no evidence
        chat.send(answer)
        asked.append(chat.step)
    assert chat.step == "review" and not {"support", "contact", "consent"} & set(asked), asked
    chat.send("Send report")
    report = chat.result.submit
    assert report is not None and report.linked_to == "HC-7K3Q-9XPD" and report.repeat == "before"
    assert report.offender is not None and report.offender.description == "My neighbour at number 4"
    assert report.contact is not None and report.contact.in_chat


def test_saying_it_changed_drops_the_earlier_answers_and_asks_again() -> None:
    chat = Chat()
    chat.send("hi")
    chat.link(EARLIER)
    chat.send("Continue")
    chat.send("no")
    chat.send("no")  # not right any more
    assert (
        chat.step == "role" and "offender" not in chat.answers and chat.answers["linked_to"] == "HC-7K3Q-9XPD"
    )


def test_no_earlier_report_from_this_chat_says_how_to_add_and_starts_as_usual() -> None:
    chat = Chat()
    chat.send("its him again")
    shown = chat.link(None, asked="")
    assert shown[0].startswith("We could not find a report sent from this chat.")
    assert "linked_to" not in (chat.answers if chat.draft is not None else {})


def test_add_followed_by_words_is_an_answer_and_a_bad_reference_is_named() -> None:
    chat = go_to(Chat(), "story")
    chat.send("add 2 photos later")
    assert chat.result.link_query is None and chat.answers["story"] == ["add 2 photos later"]
    shown = chat.send("add HC-0000-1111")
    assert chat.result.link_query is None and "linked_to" not in chat.answers
    assert shown[0].startswith("That does not look like a reference. A reference looks like HC-7K3Q-9XPD.")
    chat.send("add hc 7k3q 9xpd K7MQ-4XTD")
    assert (chat.result.link_query, chat.result.link_code) == ("HC-7K3Q-9XPD", "k7mq4xtd")
