"""Dates and times in words: a day and a part of the day from one reply, never in the future."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from flows.dates import WhenResult, looks_like_a_date, parse_date, parse_part_of_day, parse_when

TODAY = date(2026, 3, 18)  # a Wednesday
SATURDAY = date(2026, 3, 14)


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


PHRASINGS: list[tuple[str, date, str | None]] = [
    ("12/03/2026", date(2026, 3, 12), None),
    ("03/04", date(2025, 4, 3), None),  # UK order: 3 April (last year: this year's is still to come)
    ("3/4/2025", date(2025, 4, 3), None),
    ("1/2", date(2026, 2, 1), None),
    ("12 March", date(2026, 3, 12), None),
    ("12th march", date(2026, 3, 12), None),
    ("on the 12th", date(2026, 3, 12), None),
    ("march 2nd", date(2026, 3, 2), None),
    ("5 feb 2025", date(2025, 2, 5), None),
    ("last Tuesday", ago(1), None),
    ("last tues", ago(1), None),
    ("tuesday", ago(1), None),
    ("on wednesday", ago(7), None),  # today's weekday named: last week's
    ("monday morning", ago(2), "morning"),
    ("sunday night", ago(3), "night"),
    ("on friday after school", date(2026, 3, 13), "afternoon"),
    ("friday afternoon", date(2026, 3, 13), "afternoon"),
    ("saturday at lunchtime", SATURDAY, "afternoon"),
    ("it was last friday around 8pm", date(2026, 3, 13), "evening"),
    ("wensday", ago(7), None),
    ("thrusday evening", date(2026, 3, 12), "evening"),
    ("today", TODAY, None),
    ("earlier today", TODAY, None),
    ("this morning", TODAY, "morning"),
    ("this mornin", TODAY, "morning"),
    ("this afternoon", TODAY, "afternoon"),
    ("this evening", TODAY, "evening"),
    ("tonight", TODAY, "night"),
    ("earlier tonight", TODAY, "night"),
    ("just now", TODAY, None),
    ("an hour ago", TODAY, None),
    ("today at 2pm", TODAY, "afternoon"),
    ("yesterday", ago(1), None),
    ("Yesterday evening", ago(1), "evening"),
    ("yesturday", ago(1), None),
    ("yday", ago(1), None),
    ("yesterday morning on the way to school", ago(1), "morning"),
    ("yesterday about 11am", ago(1), "morning"),
    ("yesterday at 14:30", ago(1), "afternoon"),
    ("last night", ago(1), "night"),
    ("last nite", ago(1), "night"),
    ("late last night", ago(1), "night"),
    ("the day before yesterday", ago(2), None),
    ("night before last", ago(2), "night"),
    ("the weekend", SATURDAY, None),
    ("at the weekend", SATURDAY, None),
    ("last weekend", SATURDAY, None),
    ("over the weekend", SATURDAY, None),
    ("on the wkend", SATURDAY, None),
    ("the weekend before last", SATURDAY - timedelta(days=7), None),
    ("a few hours ago", TODAY, None),
    ("3 weeks ago", ago(21), None),
    ("three weeks ago", ago(21), None),
    ("2 days ago", ago(2), None),
    ("a couple of days ago", ago(2), None),
    ("couple of weeks ago", ago(14), None),
    ("a few days ago", ago(3), None),
    ("a week ago", ago(7), None),
    ("a fortnight ago", ago(14), None),
    ("about a month ago", date(2026, 2, 18), None),
    ("2 months ago", date(2026, 1, 18), None),
    ("since September", date(2025, 9, 1), None),
    ("since march", date(2026, 3, 1), None),
    ("in january", date(2026, 1, 1), None),
    ("septmber", date(2025, 9, 1), None),
    ("it happened on tuesday i think", ago(1), None),
    ("i think it was 3 days ago", ago(3), None),
    ("around 3 days ago in the evening", ago(3), "evening"),
    ("2 weeks ago on the bus after work", ago(14), "evening"),
    ("Monday 16th", date(2026, 3, 16), None),
    ("16/3 at 9pm", date(2026, 3, 16), "night"),
    ("12/03/26 in the early hours", date(2026, 3, 12), "night"),
]


@pytest.mark.parametrize(("typed", "day", "part"), PHRASINGS, ids=[p[0] for p in PHRASINGS])
def test_phrasings_are_read_as_a_day_and_a_part(typed: str, day: date, part: str | None) -> None:
    assert parse_when(typed, TODAY) == WhenResult(value=day, part=part, text=typed.strip())


def test_the_table_is_large_and_never_in_the_future() -> None:
    assert len(PHRASINGS) >= 60
    assert all(day <= TODAY for _typed, day, _part in PHRASINGS)


@pytest.mark.parametrize(
    "typed",
    [
        "tomorrow",
        "tmrw",
        "next week",
        "next friday",
        "tomorrow night",
        "later today",
        "19/03/2026",
        "12 march 2030",
    ],
)
def test_the_future_is_refused(typed: str) -> None:
    found = parse_when(typed, TODAY)
    assert (found.value, found.error) == (None, "future")


@pytest.mark.parametrize("typed", ["", "soon", "31/02/2026", "at 2", "dunno", "the bus stop", "13/13", "2"])
def test_what_is_not_a_day_is_unclear(typed: str) -> None:
    found = parse_when(typed, TODAY)
    assert (found.value, found.error) == (None, "unclear")


def test_a_part_of_the_day_alone_is_kept_but_the_day_is_unclear() -> None:
    assert parse_when("lunchtime", TODAY) == WhenResult(part="afternoon", error="unclear", text="lunchtime")


def test_what_was_typed_is_kept_trimmed_to_200_characters() -> None:
    long = "  yesterday " + "x" * 300
    found = parse_when(long, TODAY)
    assert found.text == long.strip()[:200]
    assert len(found.text) == 200


@pytest.mark.parametrize(
    ("typed", "part"),
    [
        ("after 6pm", "evening"),
        ("around 8pm", "evening"),
        ("8 pm", "evening"),
        ("7.30am", "morning"),
        ("about 2am", "night"),
        ("12pm", "afternoon"),
        ("12am", "night"),
        ("14:30", "afternoon"),
        ("23:15", "night"),
        ("00:30", "night"),
        ("lunchtime", "afternoon"),
        ("lunch time", "afternoon"),
        ("after school", "afternoon"),
        ("before school", "morning"),
        ("in the morning", "morning"),
        ("in the evening", "evening"),
        ("late at night", "night"),
        ("midnight", "night"),
        ("midday", "afternoon"),
        ("at night", "night"),
        ("dinner time", "evening"),
        ("at 2 in the afternoon", "afternoon"),
        # A bare hour is ambiguous (2 in the afternoon or in the night): no part, the flow asks.
        ("at 2", None),
        ("8 oclock", None),
        ("8:30", None),
        ("not sure", None),
        ("", None),
    ],
)
def test_parts_of_the_day(typed: str, part: str | None) -> None:
    assert parse_part_of_day(typed) == part


@pytest.mark.parametrize(
    ("today", "typed", "day"),
    [
        (date(2026, 3, 14), "at the weekend", date(2026, 3, 14)),  # said on a Saturday: today
        (date(2026, 3, 15), "the weekend", date(2026, 3, 14)),  # on a Sunday: yesterday
        (date(2026, 3, 15), "last weekend", date(2026, 3, 7)),  # on a Sunday: the one before
        (date(2026, 3, 16), "last weekend", date(2026, 3, 14)),  # on a Monday: two days ago
        (date(2026, 9, 10), "since september", date(2026, 9, 1)),
        (date(2026, 8, 31), "since september", date(2025, 9, 1)),
    ],
)
def test_weekends_and_months_depend_on_today(today: date, typed: str, day: date) -> None:
    assert parse_when(typed, today).value == day


def test_parse_date_is_parse_when_without_the_part() -> None:
    assert parse_date("yesterday evening", TODAY).value == ago(1)
    assert parse_date("tomorrow", TODAY).error == "future"


@pytest.mark.parametrize(
    ("locale", "typed", "tried"),
    [
        ("en", "because I am Muslim", False),
        ("en", "on the bus near the shops", False),
        ("en", "on the 73 bus", True),  # a number may be a date tried: the hint, not the account
        ("en", "last tusday nite", True),
        ("en", "31/02", True),
        ("pl", "bo jestem muzułmaninem", False),
        ("pl", "zeszły wtorek", True),
        ("ro", "pentru că sunt musulman", False),
        ("ro", "marți trecută", True),
        ("ur", "kyunke main musalman hoon", False),
        ("ur", "کیونکہ میں مسلمان ہوں", False),
        ("ur", "pichle hafte", True),
        ("ur", "کل رات", True),
    ],
)
def test_words_that_try_a_date_are_told_from_words_about_something_else(
    locale: str, typed: str, tried: bool
) -> None:
    # A reply that tries a date gets the date hint; one that does not is kept with the person's account.
    assert looks_like_a_date(typed, locale) is tried
