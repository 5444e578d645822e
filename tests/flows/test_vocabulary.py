"""Every option's own words work in their language: each synonym in `flows/vocab/<locale>/options.toml`,
sent at every question that offers that option, in that language, picks it (or ticks it, at a
pick-all-that-fit question). Runs for every vocabulary folder there is (`vocab.locales()`).

A word listed for two options offered at the same question (or given to another option by that question's
own words in `steps.toml`) cannot mean one of them, and a word that is also
a command (help, back, skip, stop...) is a command first: those are left out, and listed by
`test_shared_words_are_few` so that they stay few.
"""

from __future__ import annotations

import pytest

from flows import vocab
from flows.engine.model import choice_of
from flows.report import REPORT_FLOW
from flows.understand import fold, option_words, step_words
from flows.words import command
from tests.each import check_each
from tests.flows.chat import Chat
from tests.languages import ALL

# Questions reached only by routes go_to does not take, or whose options come from config.
UNREACHED = {"emergency", "resume", "linked_check", "review_change", "story_change", "support_choice"}
ROUTES = {
    "someone_else_knows": {"role": "For someone else"},
    "when_date": {"when": "Another date"},
    "harm_now": {"harm_hurt": "Yes"},
    "helper_agreed": {"role": "I am helping someone", "helper_org": "skip"},
    "helper_contact": {"role": "I am helping someone", "helper_org": "skip", "helper_agreed": "Yes"},
    "contact_message": {"contact": "Phone call"},
    "record_only": {},
}


# Options stored as something else than their key.
STORED = {("where", "web"): {"online": True}}


def start(locale: str, step: str) -> Chat:
    """A conversation at `step`, reached in English, then switched to `locale` by its own name."""
    from tests.flows.chat import PLAIN_ANSWERS

    person = Chat(language="en").with_settings(languages=ALL)
    if step == "record_only":
        person.with_settings(partners=())
    person.send("hi")
    answers = {**PLAIN_ANSWERS, **ROUTES.get(step, {})}
    for _ in range(60):
        if person.step == step:
            break
        person.send(answers[person.step])
    assert person.step == step
    if locale != "en":
        person.send(person_name(locale))
        assert person.draft is not None and person.draft.locale == locale and person.step == step
    return person


def person_name(locale: str) -> str:
    from flows import catalog

    return catalog.text(locale, "language.name")


def cases() -> list[tuple[str, str, str, str]]:
    found = []
    for locale in vocab.locales():
        words = option_words(locale)
        for step in REPORT_FLOW.steps.values():
            if step.name in UNREACHED or not step.options:
                continue
            for key in step.options:
                here = step_words(locale, step.name)  # this question's own words win ("ok" at safety: no)
                others = {w for k in step.options if k != key for w in (*words.get(k, ()), *here.get(k, ()))}
                for word in words.get(key, ()):
                    if word in others or command(word, locale) is not None:
                        continue
                    found.append((locale, step.name, key, word))
    return found


def test_there_are_words_for_every_language() -> None:
    per_locale = {locale: sum(1 for c in cases() if c[0] == locale) for locale in vocab.locales()}
    assert all(n >= 50 for n in per_locale.values()), per_locale


def questions() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The cases by language and question: (option key, word) for each."""
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for locale, step, key, word in cases():
        found.setdefault((locale, step), []).append((key, word))
    return found


QUESTIONS = questions()


@pytest.mark.parametrize(("locale", "step"), list(QUESTIONS))
def test_every_options_own_word_picks_it(installed: tuple[str, ...], locale: str, step: str) -> None:
    """Every word of every option at this question, each sent from the question reached once (the way
    there replayed for each word was most of this file's time); a failure names each word that failed."""
    reached = start(locale, step)
    check_each(
        QUESTIONS[locale, step],
        lambda case: picks(reached.fork(), step, *case),
        lambda case: f"{locale} {step}: {case[1]!r} (option {case[0]})",
    )


def picks(person: Chat, step: str, key: str, word: str) -> None:
    """The word, sent at the question, picks (or ticks) the option `key`."""
    shown = "\n".join(person.send(word))
    if step == "review":  # send, change an answer, delete and stop: each does what it says
        done = {"send": person.result.submit is not None, "delete": person.result.erase}
        assert done.get(key, person.draft is not None and person.step == "review_change"), shown
        return
    if REPORT_FLOW.steps[step].kind == "multi":
        assert key in person.last.selected or key in (person.answers.get(step) or ()), shown
        return
    assert person.step != step, shown
    stored = person.answers[step]
    assert stored == STORED.get((step, key)) or choice_of(stored) == key, (stored, shown)


def test_shared_words_are_few() -> None:
    """Words listed for two options of one question, per language (each is a word we cannot read)."""
    for locale in vocab.locales():
        words = option_words(locale)
        shared = {
            (step.name, word)
            for step in REPORT_FLOW.steps.values()
            for key in step.options
            for word in words.get(key, ())
            if any(word in words.get(k, ()) for k in step.options if k != key)
        }
        assert len(shared) <= 10, (locale, sorted(shared))
        assert all(fold(word) == word for _, word in shared)
