"""Languages in the conversation: choosing one without friction, switching at any question with every
answer kept, dates written per language, right-to-left text, and the catalog checks.

The conversation tests use the real catalogs where they are shipped and the test catalogs
(tests/flows/languages/) where not: what they assert is read from the catalog of the language in use.
"""

from __future__ import annotations

from datetime import date

import pytest

from flows import catalog, languages
from flows.catalog import CATALOGS
from flows.types import Inbound, Outbound
from flows.words import command, command_in_any_language
from tests.flows.chat import PLAIN_ANSWERS, SETTINGS, Chat, go_to

RLM = "\u200f"


def chat(enabled: tuple[str, ...], language: str | None = None) -> Chat:
    return Chat(language=language).with_settings(languages=enabled)


def words(locale: str, key: str, **fields: object) -> str:
    return catalog.text(locale, key, **fields)


def welcome(locale: str) -> str:
    return words(locale, "welcome.ask", service_name=SETTINGS.service_name, operator=SETTINGS.operator)


# ----- the catalogs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", sorted(CATALOGS))
def test_every_catalog_has_every_key_the_same_placeholders_and_the_same_numbers(locale: str) -> None:
    assert languages.check(locale, CATALOGS[locale], CATALOGS["en"]) == []


@pytest.mark.parametrize("locale", sorted(CATALOGS))
def test_every_catalog_names_its_language_in_that_language(locale: str) -> None:
    name = CATALOGS[locale]["language.name"]
    assert name and (locale == "en" or name != CATALOGS["en"]["language.name"])


@pytest.mark.parametrize("locale", sorted(CATALOGS))
def test_emergency_and_service_numbers_are_written_exactly_as_in_english(locale: str) -> None:
    """999, 112, 18000, 18001 101, 55, 116 123 and 0800 1111 appear as English writes them, never reformatted."""
    for key, numbers in {
        "emergency.ask": ("999", "112", "18000", "55"),
        "done.police": ("101", "18001 101"),
        "access.no_calls": ("18001 101",),
        "alarm.self_harm": ("116 123", "0800 1111"),
    }.items():
        for number in numbers:
            assert number in CATALOGS[locale][key], (locale, key, number)


def test_the_check_names_a_missing_key_a_changed_placeholder_and_a_changed_number() -> None:
    english = CATALOGS["en"]
    broken = dict(english)
    del broken["help.text"]
    broken["done.next"] = english["done.next"].replace("{reference}", "{ref}")
    broken["emergency.ask"] = english["emergency.ask"].replace("999", "۹۹۹", 1)  # Urdu digits: not 999
    broken["alarm.self_harm"] = english["alarm.self_harm"].replace("116 123", "116123")
    problems = dict(languages.check("xx", broken, english))
    assert problems.keys() == {"help.text", "done.next", "emergency.ask", "alarm.self_harm"}
    assert problems["help.text"] == "is missing (English has it)"
    assert "placeholders" in problems["done.next"] and "reference" in problems["done.next"]
    assert "numbers" in problems["emergency.ask"] and "999" in problems["emergency.ask"]
    assert "numbers" in problems["alarm.self_harm"]


# ----- choosing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("pl-PL,pl;q=0.9,en-GB;q=0.8,en;q=0.7", ("pl-pl", "pl", "en-gb", "en")),
        ("en;q=0.5, ro;q=0.9", ("ro", "en")),
        ("ur, en;q=0", ("ur",)),
        ("de;q=0.8, *;q=0.1, pl;q=0.8", ("de", "pl", "*")),
        ("", ()),
        ("en;q=nonsense, pl", ("pl",)),
    ],
)
def test_accept_language_is_read_most_wanted_first(header: str, tags: tuple[str, ...]) -> None:
    assert languages.accept_language(header) == tags


def test_the_first_enabled_language_the_platform_names_is_picked() -> None:
    enabled = ("en", "pl", "ro", "ur")
    assert languages.pick(("pl-PL",), enabled) == "pl"
    assert languages.pick(("de", "ro-RO", "en"), enabled) == "ro"
    assert languages.pick(("de", "fr"), enabled) is None
    assert languages.pick(("pl",), ("en",)) is None  # not enabled here
    assert languages.pick(("*", "../etc"), enabled) is None


def test_on_telegram_a_polish_phone_gets_polish_at_once_and_no_list(installed: tuple[str, ...]) -> None:
    person = chat(installed, language="pl")
    replies = person.send("hi")
    assert replies == [welcome("pl")]
    assert [o.label for o in person.last.options] == [words("pl", "option.continue")]
    assert person.draft is not None and person.draft.locale == "pl"


def test_where_the_language_cannot_be_known_the_welcome_ends_with_one_line_of_names(
    installed: tuple[str, ...],
) -> None:
    person = chat(installed)
    (shown,) = person.send("hi")
    names = " · ".join(CATALOGS[locale]["language.name"] for locale in installed)
    assert shown == f"{welcome('en')}\n\n{names}"
    assert shown.endswith(
        "English · " + " · ".join(CATALOGS[loc]["language.name"] for loc in ("pl", "ro", "ur"))
    )
    labels = [o.label for o in person.last.options]
    assert labels == ["Continue", *(CATALOGS[loc]["language.name"] for loc in ("pl", "ro", "ur"))]


def test_someone_who_just_answers_in_english_gets_no_extra_question(installed: tuple[str, ...]) -> None:
    person = chat(installed)
    person.send("hi")
    person.send("1")
    assert person.step == "safety" and person.draft is not None and person.draft.locale == "en"
    assert person.last.text == words("en", "safety.ask")  # no list of languages any more
    assert not any(o.key.startswith("lang_") for o in person.last.options)


@pytest.mark.parametrize(
    ("answer", "locale"), [("Polski", "pl"), ("polski", "pl"), ("romana", "ro"), ("4", "ur")]
)
def test_the_welcome_is_answered_with_a_language_name_or_its_number(
    installed: tuple[str, ...], answer: str, locale: str
) -> None:
    person = chat(installed)
    person.send("hi")
    replies = person.send(answer)
    assert person.step == "welcome" and person.draft is not None and person.draft.locale == locale
    assert replies[-1].startswith(languages.directed(Outbound(welcome(locale)), locale).text)
    assert "English" in [o.label for o in person.last.options]  # the way back is offered
    person.send("1")  # continue, in the language chosen
    assert person.step == "safety" and person.last.text.lstrip(RLM) == words(locale, "safety.ask")


def test_a_button_picks_a_language(installed: tuple[str, ...]) -> None:
    person = chat(installed)
    person.send("hi")
    person.press("lang_ro")
    assert person.draft is not None and person.draft.locale == "ro"
    assert person.last.text.startswith(welcome("ro"))


def test_with_one_language_enabled_nothing_is_shown_and_language_does_nothing(
    installed: tuple[str, ...],
) -> None:
    person = chat(("en",))
    assert person.send("hi") == [welcome("en")]
    assert person.keys() == ["continue"]
    person.send("Polski")  # no Polish here: not a language switch
    assert person.draft is not None and person.draft.locale == "en"


def test_an_enabled_list_without_english_starts_in_the_first_language(installed: tuple[str, ...]) -> None:
    person = chat(("pl", "ro"))
    (shown,) = person.send("hi")
    assert shown.startswith(welcome("pl")) and shown.endswith("Polski · Română")


# ----- switching -----------------------------------------------------------------------------------------


def answer_to(person: Chat, step: str) -> Chat:
    """Answer plainly until `step`, in any language: an option is pressed (by its key, as a button
    would), anything else typed as in PLAIN_ANSWERS ("High Street", "skip", "done")."""
    for _ in range(60):
        if person.step == step:
            return person
        wanted = PLAIN_ANSWERS[person.step]
        keys = [o.key for o in person.last.options if catalog.has("en", f"option.{o.key}")]
        chosen = [k for k in keys if words("en", f"option.{k}") == wanted]
        if not chosen:
            person.send(wanted)
            continue
        multi = person.last.multi
        person.press(chosen[0])
        if multi and person.step == person.last.step:  # a pick-all question: ticked, then Done
            person.press("done")
    raise AssertionError(f"never reached {step}; stuck at {person.step}")


def review_of(person: Chat) -> str:
    assert person.step == "review"
    return person.last.text


def test_a_switch_in_the_middle_keeps_every_answer_and_the_review_shows_them_in_polish(
    installed: tuple[str, ...],
) -> None:
    person = chat(installed, language="en")
    go_to(person, "story")
    person.send("A man shouted at me at the bus stop.")
    person.send("done")
    person.send("1")  # verbal abuse or threats
    assert person.step == "what"
    # "language" at a question: the languages by their own names, then Polish by its number.
    shown = person.send("language")
    assert shown == [words("en", "language.ask")]
    assert [o.label for o in person.last.options] == [CATALOGS[loc]["language.name"] for loc in installed]
    replies = person.send("2")
    assert person.step == "what" and person.draft is not None and person.draft.locale == "pl"
    assert replies == [words("pl", "what.ask")]  # the same question, in Polish
    assert person.last.selected == ("verbal",)  # the tick given in English is still there
    person.press("done")  # the tick given in English answers the question
    assert person.answers["what"] == ["verbal"]
    english_answers = dict(person.answers)
    answer_to(person, "review")
    review = review_of(person)
    assert review.startswith(words("pl", "review.ask", summary="").split("\n")[0])
    assert words("pl", "option.verbal") in review and words("pl", "option.victim") in review
    assert "A man shouted at me at the bus stop." in review  # their own words, as typed
    assert {k: person.answers[k] for k in english_answers} == english_answers
    # And back: the name "English" at the review switches again; the review is asked again in English.
    replies = person.send("English")
    assert person.draft is not None and person.draft.locale == "en"
    assert words("en", "option.verbal") in replies[-1] and "It happened to me" in replies[-1]
    assert "A man shouted at me at the bus stop." in replies[-1]


@pytest.mark.parametrize("step", ["safety", "role", "where", "offender", "contact"])
def test_typing_a_languages_own_name_at_any_question_switches_and_asks_it_again(
    installed: tuple[str, ...], step: str
) -> None:
    person = chat(installed, language="en")
    go_to(person, step)
    before = dict(person.answers)
    replies = person.send("Română")
    assert person.step == step and person.draft is not None and person.draft.locale == "ro"
    assert person.answers == before
    assert replies[-1] == person.last.text and person.last.step == step
    if step == "safety":
        assert replies == [words("ro", "safety.ask")]


def test_a_languages_name_at_its_own_language_is_an_answer_not_a_switch(installed: tuple[str, ...]) -> None:
    """ "English" typed by someone already in English is read as an answer (a nationality at "why")."""
    person = chat(installed, language="en")
    go_to(person, "where")
    person.send("English")
    assert person.step != "where" and person.answers["where"] == {"text": "English"}


def test_after_the_list_an_answer_that_picks_no_language_answers_the_question(
    installed: tuple[str, ...],
) -> None:
    person = chat(installed, language="en")
    go_to(person, "safety")
    person.send("language")
    person.send("no")
    assert person.step == "role" and person.answers["safety"] == "no"


def test_the_language_word_of_another_language_works_too(installed: tuple[str, ...]) -> None:
    """Every vocabulary's word for `language` shows the list, whatever language is in use."""
    words_for_language = {
        word
        for locale in languages.vocab.locales()
        for word, name in languages_commands(locale).items()
        if name == "language"
    }
    assert "language" in words_for_language
    for word in sorted(words_for_language):
        person = chat(installed, language="pl")
        go_to(person, "safety")
        person.send(word)
        assert person.last.step == "language", word


def languages_commands(locale: str) -> dict[str, str]:
    from flows.understand import commands

    return dict(commands(locale))


# ----- showing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "shown"),
    [("en", "17/03/2026"), ("pl", "17.03.2026"), ("ro", "17.03.2026"), ("ur", "17 مارچ، 2026")],
)
def test_dates_are_written_as_each_language_writes_them(locale: str, shown: str) -> None:
    assert languages.show_date(date(2026, 3, 17), locale) == shown


def test_the_review_writes_the_date_in_the_persons_language(installed: tuple[str, ...]) -> None:
    person = chat(installed, language="pl")
    person.send("hi")
    answer_to(person, "when")
    person.send("2")  # yesterday (TODAY is 18/03/2026)
    answer_to(person, "review")
    assert "17.03.2026" in person.last.text and "17/03/2026" not in person.last.text


def test_urdu_lines_that_start_with_latin_letters_or_digits_get_a_right_to_left_mark() -> None:
    message = Outbound(
        text="پہلے\n999 پر کال کریں\nRelay UK: 18000\n\nآپ",
        options=(languages.Option("continue", "Continue"), languages.Option("x", "جاری رکھیں")),
    )
    shown = languages.directed(message, "ur")
    assert shown.text == f"پہلے\n{RLM}999 پر کال کریں\n{RLM}Relay UK: 18000\n\nآپ"
    assert [o.label for o in shown.options] == [f"{RLM}Continue", "جاری رکھیں"]
    assert languages.directed(message, "pl") is message  # left-to-right languages are unchanged
    assert shown.text.replace(RLM, "") == message.text  # nothing else changes: 999 stays 999


def test_every_option_key_of_a_language_fits_in_telegram_callback_data(installed: tuple[str, ...]) -> None:
    for option in languages.options(installed):
        assert option.key.isascii() and len(f"welcome:{option.key}".encode()) <= 64


def test_a_draft_in_a_language_no_longer_enabled_still_speaks_from_its_catalog(
    installed: tuple[str, ...],
) -> None:
    person = chat(installed, language="ro")
    person.send("hi")
    person.settings = SETTINGS  # the deployment now offers English only
    replies = person.deliver(Inbound(text="1"))
    assert replies == [words("ro", "safety.ask")]


@pytest.mark.parametrize(
    ("locale", "typed"),
    [("pl", "pomoc"), ("pl", "wstecz"), ("ro", "ajutor"), ("ro", "înapoi"), ("ur", "مدد"), ("ur", "help")],
)
def test_the_words_that_work_anywhere_work_in_the_persons_language(
    installed: tuple[str, ...], locale: str, typed: str
) -> None:
    person = chat(installed, language="en")
    go_to(person, "where")
    person.send(CATALOGS[locale]["language.name"])  # switched there: the question again, in that language
    assert person.draft is not None and person.draft.locale == locale
    before = dict(person.answers)
    replies = person.send(typed)
    wanted = command(typed, locale)
    assert wanted in ("help", "back")
    if wanted == "help":
        assert person.step == "where" and replies[0] == words(locale, "help.text")
    else:
        assert person.step != "where"
    assert {k: v for k, v in person.answers.items() if k in before} == before


@pytest.mark.parametrize("typed", ["exit", "wyjdź", "wyjdz", "ieșire", "iesire", "نکلیں"])
def test_quick_exit_is_known_in_every_language_before_the_conversation_is_read(typed: str) -> None:
    assert command_in_any_language(typed) == "exit"
