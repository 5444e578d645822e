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

from flows import catalog
from flows.engine import SAID
from flows.report import REPORT_FLOW
from flows.types import ContactDetails, EarlierReport, Offender
from tests.each import check_each
from tests.flows.chat import PLAIN_ANSWERS, Chat

CORPUS = Path(__file__).parent / "own_words"
FIRST_PART = "A man shouted at me at the bus stop."
EARLIER = EarlierReport(
    reference="HC-7K3Q-9XPD",
    role="victim",
    offender=Offender(description="My neighbour at number 4", known="yes"),
    contact=ContactDetails(in_chat=True, by="chat"),
)


# A small test corpus per language, used only while that language's real one is not merged.
STAND_IN = Path(__file__).parent / "languages" / "own_words"


def folders() -> list[tuple[str, Path]]:
    """English at the top of the corpus; each other language in its own folder (`own_words/<locale>/`)."""
    real = {p.name: p for p in sorted(CORPUS.iterdir()) if p.is_dir()}
    stand_ins = {p.name: p for p in sorted(STAND_IN.iterdir()) if p.is_dir() and p.name not in real}
    return [("en", CORPUS), *sorted({**real, **stand_ins}.items())]


def cases(locale: str | None = "en") -> list[tuple[str, str, Any]]:
    return [(step, text, meaning) for _, step, text, meaning in every_case() if locale in (None, _)]


def every_case() -> list[tuple[str, str, str, Any]]:
    found = []
    for locale, folder in folders():
        for path in sorted(folder.glob("*.toml")):
            if path.stem in (
                "danger",
                "series",
            ):  # each has its own test (test_danger.py, test_series_words.py)
                continue
            table = tomllib.loads(path.read_text("utf-8"))
            step = table.get("step", path.stem)
            found.extend((locale, step, text, meaning) for text, meaning in table["replies"].items())
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


def start_at(step: str, locale: str = "en") -> Chat:
    """The conversation at `step`, reached in English; in another language, switched to it there (by
    typing the language's own name), so the question is asked again in that language."""
    chat = Chat(language="en").with_settings(languages=("en", locale)) if locale != "en" else Chat()
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
    if locale != "en":
        chat.send(catalog.text(locale, "language.name"))
        assert chat.draft is not None and chat.draft.locale == locale and chat.step == step
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


@pytest.mark.parametrize("locale", [locale for locale, _ in folders()])
def test_each_languages_corpus_names_real_questions_and_has_a_catalog(locale: str) -> None:
    from flows.report import REPORT_FLOW

    found = [step for loc, step, _, _ in every_case() if loc == locale]
    assert found and set(found) <= set(REPORT_FLOW.steps), locale
    assert locale in catalog.CATALOGS or (Path(__file__).parent / "languages" / f"{locale}.toml").is_file()


def questions() -> dict[tuple[str, str], list[tuple[str, Any]]]:
    """The corpus by language and question: (reply, meaning) for each line."""
    found: dict[tuple[str, str], list[tuple[str, Any]]] = {}
    for locale, step, text, meaning in every_case():
        found.setdefault((locale, step), []).append((text, meaning))
    return found


QUESTIONS = questions()


@pytest.mark.parametrize(("locale", "step"), list(QUESTIONS))
def test_every_reply_means_what_the_person_meant(installed: tuple[str, ...], locale: str, step: str) -> None:
    """Every line of the question's corpus, each sent from the question reached once (copied for each
    reply); a failure names each line that failed, with what the bot said."""
    reached = start_at(step, locale)
    check_each(
        QUESTIONS[locale, step],
        lambda line: means(reached.fork(), locale, step, *line),
        lambda line: f"{locale} {step}: {line[0]!r} meant {line[1]!r}",
    )


def means(chat: Chat, locale: str, step: str, text: str, meaning: Any) -> None:
    """The reply `text`, sent at the question, means `meaning` (see the module's docstring)."""
    added = catalog.text(locale, "story.added").rstrip(".")
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
        assert story == [*before, text.strip()] and added in shown, shown
        assert chat.step != step and answers[step] == meaning["answer"], shown
        if REPORT_FLOW.steps[step].details:  # "yes, he punched me": the words kept with that answer too
            assert answers[SAID] == {step: text.strip()}, answers
        return
    if meaning == "story":
        assert story == [*before, text.strip()], shown
        assert added in shown, shown
        return
    assert story == before or step == "story", (story, shown)
    if meaning == "contact_empty":  # nothing to reach them by: back to the contact question
        assert chat.step == "contact" and answers[step] is None, shown
        assert catalog.text(locale, "contact.empty") in shown, shown
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
