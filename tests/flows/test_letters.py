"""Letters typed every which way mean the same: accents dropped on a phone, Romanian cedillas, Urdu
typed on an Arabic keyboard or with vowel marks, digits of other scripts (flows/letters.py)."""

from __future__ import annotations

from datetime import date

import pytest

from flows.danger import assess
from flows.dates import parse_when
from flows.letters import plain
from flows.understand import fold

TODAY = date(2026, 11, 28)  # a Saturday


@pytest.mark.parametrize(
    ("typed", "same_as"),
    [
        ("zagrożenie", "zagrozenie"),  # Polish, accents dropped on a phone
        ("Łódź", "lodz"),  # ł has no decomposition of its own
        ("mi-e frică", "mi-e frica"),  # Romanian comma-below letters and breves
        ("mă urmăreşte", "ma urmareste"),  # s with a cedilla, from an older keyboard
        ("مجھے مدد چاہیے", "مجهے مدد چاهیے"),  # Urdu heh typed as the Arabic heh
        ("کیا", "كيا"),  # keheh and Farsi yeh typed as the Arabic kaf and yeh
        ("مَدَد", "مدد"),  # short-vowel marks added or not
        ("۹۹۹", "999"),  # Urdu digits
        ("٩٩٩", "999"),  # Arabic-Indic digits
    ],
)
def test_every_way_of_typing_a_word_folds_to_one(typed: str, same_as: str) -> None:
    assert plain(typed) == plain(same_as)
    assert fold(typed) == fold(same_as)


def test_superscripts_are_not_digits() -> None:
    assert plain("²") != "2"


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("mă urmărește cineva", "ro"),
        ("mă urmăreşte cineva", "ro"),  # cedilla
        ("ma urmareste cineva", "ro"),
        ("mi-e frică", "ro"),
        ("on stoi pod moimi drzwiami", "pl"),
        ("on stoi pod moimi drzwiami teraz", "pl"),
        ("وہ ابھی میرے گھر کے باہر کھڑے ہیں", "ur"),
        ("وه ابهی میرے گهر کے باہر کهڑے ہیں", "ur"),  # the same typed with the Arabic heh
    ],
)
def test_danger_now_is_caught_with_or_without_accents(text: str, locale: str) -> None:
    assert assess(text, locale).danger


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("chcę się zabić", "pl"),
        ("chce sie zabic", "pl"),
        ("vreau să mă omor", "ro"),
        ("vreau sa ma omor", "ro"),
    ],
)
def test_self_harm_words_are_noticed_with_or_without_accents(text: str, locale: str) -> None:
    assert assess(text, locale).self_harm


def test_a_knife_and_fork_is_not_a_weapon_in_romanian_either() -> None:
    assert not assess("cuțit și furculiță", "ro").danger
    assert assess("are un cuțit", "ro").danger


@pytest.mark.parametrize(
    ("text", "locale", "day", "part"),
    [
        ("wczoraj wieczorem", "pl", date(2026, 11, 27), "evening"),
        ("3 tygodnie temu", "pl", date(2026, 11, 7), None),
        ("miesiąc temu", "pl", date(2026, 10, 28), None),  # a count back, not the 1st of the month
        ("acum o lună", "ro", date(2026, 10, 28), None),
        ("acum o luna", "ro", date(2026, 10, 28), None),
        ("کل رات", "ur", date(2026, 11, 27), "night"),
        ("۳ دن پہلے", "ur", date(2026, 11, 25), None),  # Urdu digits
        ("kal raat", "ur", date(2026, 11, 27), "night"),  # Roman Urdu
        ("a month ago", "en", date(2026, 10, 28), None),
        ("since september", "en", date(2026, 9, 1), None),
    ],
)
def test_days_are_read_in_each_language(text: str, locale: str, day: date, part: str | None) -> None:
    found = parse_when(text, TODAY, locale)
    assert (found.value, found.part) == (day, part)
