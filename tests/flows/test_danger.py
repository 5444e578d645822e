"""Danger and self-harm in free text: the corpus figures, the cases from issue 11, and what the person sees."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from flows.danger import Concern, assess, suggests_danger
from tests.flows.chat import Chat, go_to, said

CORPUS = tomllib.loads((Path(__file__).parent / "own_words" / "danger.toml").read_text("utf-8"))
# The other languages' danger lists: `own_words/<locale>/danger.toml`, same tables, smaller.
LOCALE_CORPORA = {
    path.parent.name: tomllib.loads(path.read_text("utf-8"))
    for path in sorted((Path(__file__).parent / "own_words").glob("*/danger.toml"))
}


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS["danger"]) >= 100
    assert len(CORPUS["harmless"]) >= 100
    assert len(CORPUS["self_harm"]) >= 20


def test_every_danger_line_raises_the_alarm() -> None:
    missed = [line for line in CORPUS["danger"] if not assess(line).danger]
    assert missed == []  # recall 100%


def test_every_self_harm_line_is_noticed() -> None:
    missed = [line for line in CORPUS["self_harm"] if not assess(line).self_harm]
    assert missed == []  # recall 100%


def test_stories_of_the_past_and_everyday_words_raise_no_alarm() -> None:
    alarms = [line for line in CORPUS["harmless"] if assess(line) != Concern()]
    assert len(alarms) <= 0.05 * len(CORPUS["harmless"])  # the issue's bar
    # Measured: 1 of 186. "Will come back" is a threat from most people, not from a landlord.
    assert alarms == ["the landlord said he will come back on monday to fix the door"]


@pytest.mark.parametrize(
    "text",
    [
        "they said they'll come back tonight",
        "he said he'd kill me",
        "someone is banging on my door",
        "there is a man with a knfie",
        "I am scared",
        "the man who attacked me last week is outside",  # a past, and a now
    ],
)
def test_the_misses_from_the_issue_are_caught(text: str) -> None:
    assert assess(text) == Concern(danger=True)
    assert suggests_danger(text)


@pytest.mark.parametrize(
    "text", ["a man behind me grabbed my hijab", "he had a knife", "they followed me home last week"]
)
def test_the_false_alarms_from_the_issue_are_gone(text: str) -> None:
    assert assess(text) == Concern()


@pytest.mark.parametrize(
    ("text", "concern"),
    [
        ("they said he should kill himself", Concern(self_harm=True)),
        ("he told me to kill myself", Concern(self_harm=True)),  # abuse, and a risk for a young person
        ("he is outside my house and i want to end it all", Concern(danger=True, self_harm=True)),
        ("", Concern()),
    ],
)
def test_self_harm_is_its_own_concern(text: str, concern: Concern) -> None:
    assert assess(text) == concern


def test_an_unknown_language_reads_with_the_english_words() -> None:
    assert assess("he has a knife", locale="xx") == Concern(danger=True)


def test_self_harm_words_give_samaritans_and_childline_then_the_question_again() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("They told me to kill myself and I don't want to be here anymore")
    assert said(reply[:1], "Samaritans", "116 123", "Childline", "0800 1111")
    assert not said(reply, "call 999")
    assert said(reply[-1:], "Is there more you want to add?")
    assert chat.step == "story"
    assert chat.answers["story"] == ["They told me to kill myself and I don't want to be here anymore"]


def test_danger_and_self_harm_together_give_both_messages_once() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("he is outside with a knife and says i should kill myself")
    assert sum("call 999" in r for r in reply) == 1
    assert sum("Samaritans" in r for r in reply) == 1
    assert said(reply[:1], "If you are in danger now, call 999")
    assert said(reply[1:2], "Samaritans", "116 123")


def test_a_story_of_the_past_gets_no_reminder() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("A man behind me grabbed my hijab")
    assert not said(reply, "call 999") and not said(reply, "Samaritans")
    assert said(reply, "Is there more you want to add?")


# ----- every language ----------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", sorted(LOCALE_CORPORA))
def test_each_languages_danger_and_self_harm_lines_are_all_caught(locale: str) -> None:
    corpus = LOCALE_CORPORA[locale]
    assert corpus.get("danger") and corpus.get("harmless"), locale
    missed = [line for line in corpus["danger"] if not assess(line, locale=locale).danger]
    assert missed == [], locale  # recall 100%, as in English
    missed = [line for line in corpus.get("self_harm", ()) if not assess(line, locale=locale).self_harm]
    assert missed == [], locale


@pytest.mark.parametrize("locale", sorted(LOCALE_CORPORA))
def test_each_languages_everyday_words_raise_few_alarms(locale: str) -> None:
    harmless = LOCALE_CORPORA[locale]["harmless"]
    alarms = [line for line in harmless if assess(line, locale=locale) != Concern()]
    assert len(alarms) <= 0.05 * len(harmless), (locale, alarms)


@pytest.mark.parametrize("locale", sorted(LOCALE_CORPORA))
def test_in_each_language_danger_words_bring_the_999_reminder_in_that_language(
    installed: tuple[str, ...], locale: str
) -> None:
    from flows import catalog

    chat = go_to(Chat(language="en").with_settings(languages=("en", locale)), "story")
    chat.send(catalog.text(locale, "language.name"))
    reply = chat.send(LOCALE_CORPORA[locale]["danger"][0])
    assert reply[0].lstrip("\u200f") == catalog.text(locale, "alarm.text")
    assert "999" in reply[0] and chat.step == "story"
