"""Reading when something happened, as people type it, UK style, relative to the local date. No I/O.

`parse_when` reads a day and a part of the day from one reply: "yesterday evening", "last night" (yesterday,
night), "this morning" (today, morning), "the weekend" (the most recent Saturday), "3 weeks ago", "since
September" (1 September, the most recent one), "on friday after school" (Friday, afternoon), "around 8pm",
dd/mm/yyyy and d/m in UK order (03/04 is 3 April), with typos ("yesturday", "last nite"). It never returns a
future date: "tomorrow" and "next week" are the error "future".

Numbers-only dates are read here (UK order, strictly); words go to `dateparser`, always with the language,
"prefer the past" and today as the base given explicitly (it works offline). The words dateparser lacks
(parts of the day, "the weekend", "a couple of", misspellings) are data: `flows/vocab/<locale>/dates.toml`.

"tonight" is today, night ("this evening" is today, evening). A part of the day with no day ("lunchtime")
is kept in `part` while the day is "unclear".

Parts of the day: a clock time with am/pm or on the 24-hour clock gives the part by its hour ("after
6pm" is evening, "14:30" afternoon). A bare hour ("at 2", "8 o'clock", "8:30") is ambiguous (2 in the
afternoon or 2 in the night): it gives no part, so that the flow asks rather than guesses; a part word
with it decides ("at 2 in the afternoon").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, TypeVar

import dateparser
from babel import Locale
from dateparser.search import search_dates
from rapidfuzz import process
from rapidfuzz.distance import OSA

from flows import vocab
from flows.languages import BABEL
from flows.letters import plain

_LIMIT = 200
_NUMERIC = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_CLOCK = re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?\s?m\b\.?")
_H24 = re.compile(r"\b(\d{1,2})[:.](\d{2})\b(?![./]\d)")
_BARE_HOUR = re.compile(
    r"\b(?:at|around|about|after|before|by|till|until)\s+\d{1,2}\b(?!\s*(?:[a-z]+s\b|day|week|month|year|st|nd|rd|th))"
    r"(?:\s*oclock)?|\b\d{1,2}\s*oclock\b"
)
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script, after letters.plain
_LANGUAGES = {"en": "en", "pl": "pl", "ro": "ro", "ur": "ur"}  # our locale -> dateparser's language
_Pair = TypeVar("_Pair", tuple[str, int, str | None], tuple[str, str])


@dataclass(frozen=True, slots=True)
class WhenResult:
    """A day and part of the day read from what was typed, or why not."""

    value: date | None = None  # the day, when one can be read
    part: str | None = None  # "morning" | "afternoon" | "evening" | "night" when said
    error: str | None = None  # "future" | "unclear" | None
    text: str = ""  # what was typed, trimmed, at most 200 characters


@dataclass(frozen=True, slots=True)
class DateResult:
    """A parsed date, or why not: error "future" (after today) or "unclear" (not a date we can read)."""

    value: date | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Vocab:
    spelling: Mapping[str, str]
    fuzzy: frozenset[str]
    keep: frozenset[str]
    days: tuple[tuple[str, int, str | None], ...]  # longest first
    weekend: tuple[str, ...]
    last_weekend: tuple[str, ...]
    weekend_before_last: tuple[str, ...]
    future: tuple[str, ...]
    numbers: tuple[tuple[str, str], ...]  # longest first
    filler: tuple[str, ...]
    parts: tuple[tuple[str, str], ...]  # (phrase, part), longest first
    hours: Mapping[int, str]
    relative: tuple[str, ...]  # "ago": a count back from today, not the start of a month
    relative_first: tuple[str, ...]  # "last", "a": at the start, the same


@cache
def _vocab(locale: str) -> _Vocab:
    data: Mapping[str, Any] = vocab.table(locale, "dates")
    hours: dict[int, str] = {}
    for part, (first, last) in data["hours"].items():
        hour = first
        while True:
            hours[hour] = part
            if hour == last:
                break
            hour = (hour + 1) % 24
    return _Vocab(
        spelling={plain(k): plain(v) for k, v in data["spelling"].items()},
        fuzzy=frozenset(map(plain, data["fuzzy"]["words"])),
        keep=frozenset(map(plain, data["fuzzy"]["keep"])),
        days=_longest_first((plain(k), int(v["days"]), v.get("part")) for k, v in data["days"].items()),
        weekend=tuple(map(plain, data["weekend"]["words"])),
        last_weekend=tuple(map(plain, data["weekend"]["last"])),
        weekend_before_last=tuple(map(plain, data["weekend"]["before_last"])),
        future=tuple(map(plain, data["future"]["phrases"])),
        numbers=_longest_first((plain(k), v) for k, v in data["numbers"].items()),
        filler=tuple(sorted(map(plain, data["filler"]["phrases"]), key=len, reverse=True)),
        parts=_longest_first((plain(p), part) for part, phrases in data["parts"].items() for p in phrases),
        relative=tuple(map(plain, data.get("relative", {}).get("words", ()))),
        relative_first=tuple(map(plain, data.get("relative", {}).get("first", ()))),
        hours=hours,
    )


def _longest_first(pairs: Iterable[_Pair]) -> tuple[_Pair, ...]:
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))


def parse_when(text: str, today: date, locale: str = "en") -> WhenResult:
    """Read a typed day (and part of the day) relative to `today`; never a future day."""
    typed = text.strip()[:_LIMIT]
    words = _vocab(locale)
    cleaned = _clean(typed, words)
    part = _part(cleaned, words)
    try:
        found = _day(cleaned, today, words, locale)
    except ValueError:  # 31/02 and friends
        return WhenResult(part=part, error="unclear", text=typed)
    if found == "future" or (isinstance(found, date) and found > today):
        return WhenResult(part=part, error="future", text=typed)
    if not isinstance(found, date) or found.year < today.year - 100:
        return WhenResult(part=part, error="unclear", text=typed)
    return WhenResult(value=found, part=part, text=typed)


def looks_like_a_date(text: str, locale: str = "en") -> bool:
    """Whether words that are not a date we can read still look like one tried (a typo, "the 31st",
    "last Tusday"): a digit, or a day, month or date word of the language. Words with none of those
    ("because I am Muslim") answer something else: the flow keeps them with the person's account."""
    cleaned = _clean(text.strip()[:_LIMIT], _vocab(locale))
    return any(ch.isdigit() for ch in cleaned) or any(w in _date_words(locale) for w in cleaned.split())


@cache
def _date_words(locale: str) -> frozenset[str]:
    """Single words that say something about a day: the vocabulary's, and the language's month and weekday
    names (Babel's, wide and abbreviated; the two-letter ones left out as too common)."""
    words = _vocab(locale)
    phrases = [
        *words.fuzzy,
        *words.spelling.values(),
        *(p for p, _days, _part in words.days),
        *words.weekend,
        *words.future,
        *(p for p, _part in words.parts),
        *words.relative,
        *words.relative_first,
    ]
    found = {p for p in phrases if " " not in p} | _names(locale)
    return frozenset(w for w in found if len(w) > 2)


def _names(locale: str) -> set[str]:
    """The language's month and weekday names, as written in a date and alone, wide and abbreviated."""
    names = Locale.parse(BABEL.get(locale, locale))
    tables = [
        t[c][w]
        for t in (names.months, names.days)
        for c in ("format", "stand-alone")
        for w in ("wide", "abbreviated")
    ]
    return {plain(n).lower().rstrip(".") for table in tables for n in table.values()}


def parse_part_of_day(text: str, locale: str = "en") -> str | None:
    """ "morning", "afternoon", "evening" or "night" when the text says one ("after 6pm", "lunchtime")."""
    words = _vocab(locale)
    return _part(_clean(text.strip()[:_LIMIT], words), words)


def parse_date(text: str, today: date) -> DateResult:
    """Read a typed date relative to `today`; no future dates. (`parse_when` without the part of the day.)"""
    found = parse_when(text, today)
    return DateResult(value=found.value, error=found.error)


def _clean(text: str, words: _Vocab) -> str:
    """Lower case, no apostrophes, misspellings corrected; keeps / . : - between digits for dates and times."""
    lowered = plain(text).replace("’", "").replace("'", "")
    lowered = re.sub(r"[^\w/.:\-]+|_", " ", lowered)
    lowered = re.sub(r"(?<!\d)[.:\-/]|[.:\-/](?!\d)", " ", lowered)
    out = []
    for word in lowered.split():
        if _WORD.fullmatch(word):
            word = words.spelling.get(word) or _corrected(word, words)
        out.append(word)
    return " ".join(out)


def _closest(word: str, keys: frozenset[str]) -> str:
    """The key word `word` is a misspelling of: one letter wrong or two swapped, two for long words."""
    limit = 2 if len(word) >= 8 else 1
    found = process.extractOne(word, keys, scorer=OSA.distance, score_cutoff=limit)
    return found[0] if found is not None else word


def _corrected(word: str, words: _Vocab) -> str:
    if len(word) < 5 or word.isdigit() or word in words.fuzzy or word in words.keep:
        return word
    return _closest(word, words.fuzzy)


def _has(text: str, phrase: str) -> bool:
    return f" {phrase} " in f" {text} "


def _drop(text: str, phrase: str) -> str:
    return f" {text} ".replace(f" {phrase} ", " ").strip()


def _part(text: str, words: _Vocab) -> str | None:
    if match := _CLOCK.search(text):
        hour = int(match.group(1)) % 12 + (12 if match.group(3) == "p" else 0)
        return words.hours.get(hour)
    for match in _H24.finditer(text):
        hour = int(match.group(1))
        if (hour == 0 or 13 <= hour <= 23) and int(match.group(2)) < 60:
            return words.hours.get(hour)
    found = [(f" {text} ".find(f" {phrase} "), part) for phrase, part in words.parts if _has(text, phrase)]
    return min(found)[1] if found else None


def _day(text: str, today: date, words: _Vocab, locale: str) -> date | str | None:
    if not text:
        return None
    said = _said_day(text, today, words)
    if said is not None:
        return said
    rest = _rest(text, words)
    if not rest:
        return None
    if (numeric := _numeric(rest, today)) is not None:
        return numeric
    if rest.isdigit():  # "2" alone is a time or a count, not a day
        return "unclear"
    return _dateparser(rest, today, locale)


def _said_day(text: str, today: date, words: _Vocab) -> date | str | None:
    """A day named by the words in the data: "tomorrow" (future), "last night", "the weekend"."""
    if any(_has(text, phrase) for phrase in words.future):
        return "future"
    for phrase, days, _part_said in words.days:
        if _has(text, phrase):
            return today - timedelta(days=days)
    if any(_has(text, w) for w in words.weekend):
        return _weekend(text, today, words)
    return None


def _weekend(text: str, today: date, words: _Vocab) -> date:
    """The most recent Saturday; "last weekend" said at the weekend is the one before."""
    back = (today.weekday() - 5) % 7
    before_last = any(_has(text, p) for p in words.weekend_before_last)
    if before_last or (back <= 1 and any(_has(text, p) for p in words.last_weekend)):
        back += 7
    return today - timedelta(days=back)


def _rest(text: str, words: _Vocab) -> str:
    """The text without times, part-of-day words and fillers; counting words as numbers."""
    rest = _BARE_HOUR.sub(" ", _H24.sub(" ", _CLOCK.sub(" ", text)))
    rest = " ".join(rest.split())
    for phrase, _part_name in words.parts:
        rest = _drop(rest, phrase)
    for phrase, number in words.numbers:
        rest = f" {rest} ".replace(f" {phrase} ", f" {number} ").strip()
    for phrase in words.filler:
        rest = _drop(rest, phrase)
    return " ".join(rest.split())


def _numeric(text: str, today: date) -> date | None:
    if match := _NUMERIC.match(text):
        day, month = int(match.group(1)), int(match.group(2))
        return date(_year(match.group(3), day, month, today), month, day)
    if match := _ISO.match(text):
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return None


def _year(raw: str | None, day: int, month: int, today: date) -> int:
    if raw is None:  # no year: the most recent such date
        return today.year if date(today.year, month, day) <= today else today.year - 1
    year = int(raw)
    if len(raw) == 2:
        year += 2000 if 2000 + year <= today.year else 1900
    return year


def _dateparser(text: str, today: date, locale: str) -> date | None:
    base = datetime(today.year, today.month, today.day, 12, 0)
    words = _vocab(locale)
    relative = any(_has(text, w) for w in words.relative) or text.startswith(
        tuple(f"{w} " for w in words.relative_first)
    )
    settings: Any = {
        "PREFER_DATES_FROM": "past",
        "RELATIVE_BASE": base,
        "DATE_ORDER": "DMY",
        # "since September" is 1 September; "a month ago" is a month before today.
        "PREFER_DAY_OF_MONTH": "current" if relative else "first",
    }
    languages = [_LANGUAGES.get(locale, "en")]
    found = dateparser.parse(text, languages=languages, settings=settings)
    if found is None:
        found = _searched(text, languages, settings)
    return found.date() if found is not None else None


def _searched(text: str, languages: list[str], settings: Any) -> datetime | None:
    """The longest date found inside a sentence; a short word alone ("sat", "may") is too often not one."""
    matches = search_dates(text, languages=languages, settings=settings) or []
    usable = [(len(s), when) for s, when in matches if len(s) > 3 or any(c.isdigit() for c in s)]
    return max(usable, key=lambda m: m[0])[1] if usable else None
