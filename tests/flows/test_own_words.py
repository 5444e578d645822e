"""What people type, in their own words, at every question: the corpus in `tests/flows/own_words/`.

One TOML file per question: each line is a reply as people really send it (typos, lower case, no
apostrophes, emoji) and what it must mean there. Each is sent through the real flow, from that question:

- an option key (or a list of them, or a table of fields for a date): the answer stored;
- "skip": the question is passed with nothing stored;
- "reask": the same question again, nothing stored and nothing added to the person's account;
- "story": the words join the person's account (the story), and they are told so;
- {answer = ..., kept = true}: that answer, and the words (a long reply) also join the account;
- "tick:<key>,<key>": at a pick-all-that-fit question, those are ticked and the question stays open;
- at the story ("Is there more you want to add?"): "end" ends it with what they wrote before, "add" adds;
- at the review: "send", "change" or "delete" does that.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from flows.types import ContactDetails, EarlierReport, Offender
from tests.flows.chat import PLAIN_ANSWERS, Chat

CORPUS = Path(__file__).parent / "own_words"
FIRST_PART = "A man shouted at me at the bus stop."
EARLIER = EarlierReport(
    reference="HC-7K3Q-9XPD",
    role="victim",
    offender=Offender(description="My neighbour at number 4", known="yes"),
    contact=ContactDetails(in_chat=True, by="chat"),
)


def cases() -> list[tuple[str, str, Any]]:
    found = []
    for path in sorted(CORPUS.glob("*.toml")):
        if path.stem in ("danger", "series"):  # each has its own test (test_danger.py, test_series_words.py)
            continue
        table = tomllib.loads(path.read_text("utf-8"))
        step = table.get("step", path.stem)
        found.extend((step, text, meaning) for text, meaning in table["replies"].items())
    return found


# How to reach the questions that only some people are asked: the earlier answers that lead there.
ROUTES: dict[str, dict[str, str]] = {
    "someone_else_knows": {"role": "For someone else"},
    "when_date": {"when": "Another date"},
    "harm_now": {"harm_hurt": "Yes"},
    "org_name": {"role": "For an organisation"},
    "helper_org": {"role": "I am helping someone"},
    "helper_agreed": {"role": "I am helping someone", "helper_org": "skip"},
    "helper_contact": {"role": "I am helping someone", "helper_org": "skip", "helper_agreed": "Yes"},
    "support_choice": {"support": "Yes"},
    "contact_name": {"contact": "Phone call"},
    "contact_phone": {"contact": "Phone call"},
    "contact_email": {"contact": "Email"},
    "contact_times": {"contact": "Phone call"},
    "contact_message": {"contact": "Phone call"},
    "contact_notes": {"contact": "Phone call"},
}


def start_at(step: str) -> Chat:
    chat = Chat()
    if step == "record_only":
        chat.with_settings(partners=())
    chat.send("hi")
    if step == "linked_check":  # a report joined to an earlier one, whose answers are offered again
        chat.link(EARLIER)
    route = {**PLAIN_ANSWERS, **ROUTES.get(step, {})}
    for _ in range(60):
        if chat.step == step:
            break
        chat.send(route[chat.step])
    assert chat.step == step
    if step == "story":
        chat.send(FIRST_PART)
    return chat


def test_the_corpus_is_large_and_covers_every_question() -> None:
    from flows.report import REPORT_FLOW

    found = cases()
    assert len(found) >= 300
    covered = {step for step, _, _ in found}
    asked = set(REPORT_FLOW.steps) - {"review_change", "story_change", "resume", "emergency"}
    assert asked <= covered, asked - covered


@pytest.mark.parametrize(("step", "text", "meaning"), cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_reply_means_what_the_person_meant(step: str, text: str, meaning: Any) -> None:
    chat = start_at(step)
    before = list(chat.answers.get("story") or [])  # type: ignore[call-overload]
    replies = chat.send(text)
    shown = "\n".join(replies)
    if meaning in ("send", "change", "delete") and step == "review":
        outcome = {"send": chat.result.submit is not None, "delete": chat.result.erase}
        assert outcome.get(meaning, chat.draft is not None and chat.step == "review_change"), shown
        return
    answers = chat.draft.answers if chat.draft is not None else {}
    story = list(answers.get("story") or [])
    if isinstance(meaning, dict) and "times" in meaning:  # the way, and when, from the same words
        assert answers[step] == meaning["answer"] and answers["contact_times"] == meaning["times"], shown
        return
    if isinstance(meaning, dict) and "kept" in meaning:  # an answer that also tells what happened
        assert story == [*before, text.strip()] and "added that to what happened" in shown, shown
        assert chat.step != step and answers[step] == meaning["answer"], shown
        return
    if meaning == "story":
        assert story == [*before, text.strip()], shown
        assert "added that to what happened" in shown, shown
        return
    assert story == before or step == "story", (story, shown)
    if meaning == "contact_empty":  # nothing to reach them by: back to the contact question
        assert chat.step == "contact" and answers[step] is None, shown
        assert "without a number or an email" in shown, shown
        return
    if meaning == "reask":
        assert chat.step == step and step not in answers, shown
    elif isinstance(meaning, str) and meaning.startswith("tick:"):
        assert chat.step == step and chat.last.selected == tuple(meaning[5:].split(",")), shown
    elif step == "story":
        assert chat.step == ("what" if meaning == "end" else "story"), shown
        assert story == ([FIRST_PART] if meaning == "end" else [FIRST_PART, text.strip()]), shown
    else:
        assert chat.step != step, shown
        stored = answers[step]
        if meaning == "skip":
            assert stored is None, stored
        elif isinstance(meaning, dict):
            assert isinstance(stored, dict) and {k: stored.get(k) for k in meaning} == meaning, stored
        else:
            assert stored == meaning, shown
