"""Reading the date someone types, UK style, relative to the local date. No I/O.

Accepts dd/mm/yyyy, dd/mm/yy, d/m, yyyy-mm-dd, "12 March", "March 12th 2025", "today", "yesterday",
"last Tuesday", "Tuesday", "3 days ago", "a week ago", "2 weeks ago". Never returns a future date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from flows import understand, vocab
from flows.words import YESTERDAY

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("monday", "mon"),
            ("tuesday", "tue", "tues"),
            ("wednesday", "wed"),
            ("thursday", "thu", "thur", "thurs"),
            ("friday", "fri"),
            ("saturday", "sat"),
            ("sunday", "sun"),
        )
    )
    for name in names
}
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
_NUMBER_WORDS |= {"a few": 3, "a couple": 2, "a couple of": 2, "few": 3, "couple": 2}
_UNIT_DAYS = {"day": 1, "week": 7, "month": 30}

_NUMERIC = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DAY_MONTH = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?(?: of)? ([a-z]+)(?:,? (\d{2}|\d{4}))?$")
_MONTH_DAY = re.compile(r"^([a-z]+) (\d{1,2})(?:st|nd|rd|th)?(?:,? (\d{2}|\d{4}))?$")
_AGO = re.compile(r"^(\d{1,3}|[a-z]+|a few|a couple of|a couple) (day|days|week|weeks|month|months) ago$")
_WEEKDAY = re.compile(r"^(?:(last|on|this|this past) )?([a-z]+)$")


@dataclass(frozen=True, slots=True)
class DateResult:
    """A parsed date, or why not: error "future" (after today) or "unclear" (not a date we can read)."""

    value: date | None = None
    error: str | None = None


def parse_date(text: str, today: date) -> DateResult:
    """Read a typed date relative to `today`; no future dates."""
    cleaned = re.sub(r"\s+", " ", text.strip().lower()).strip(" .!?,")
    cleaned = re.sub(r"^(on|it was|about|around) ", "", cleaned)
    try:
        found = _read(cleaned, today)
    except ValueError:  # 31/02 and friends
        return DateResult(error="unclear")
    if found is None or found.year < today.year - 100:
        return DateResult(error="unclear")
    if found > today:
        return DateResult(error="future")
    return DateResult(value=found)


def _year(raw: str | None, day: int, month: int, today: date) -> int:
    if raw is None:  # no year: the most recent such date
        return today.year if date(today.year, month, day) <= today else today.year - 1
    year = int(raw)
    if len(raw) == 2:
        year += 2000 if 2000 + year <= today.year else 1900
    return year


def _numeric(text: str, today: date) -> date | None:
    if match := _NUMERIC.match(text):
        day, month = int(match.group(1)), int(match.group(2))
        return date(_year(match.group(3), day, month, today), month, day)
    if match := _ISO.match(text):
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    return None


def _named_month(text: str, today: date) -> date | None:
    if (match := _DAY_MONTH.match(text)) and match.group(2) in _MONTHS:
        day, month = int(match.group(1)), _MONTHS[match.group(2)]
        return date(_year(match.group(3), day, month, today), month, day)
    if (match := _MONTH_DAY.match(text)) and match.group(1) in _MONTHS:
        day, month = int(match.group(2)), _MONTHS[match.group(1)]
        return date(_year(match.group(3), day, month, today), month, day)
    return None


def _ago(match: re.Match[str], today: date) -> date | None:
    raw = match.group(1)
    count = int(raw) if raw.isdecimal() else _NUMBER_WORDS.get(raw)
    if count is None:
        return None
    return today - timedelta(days=count * _UNIT_DAYS[match.group(2).rstrip("s")])


def _relative(text: str, today: date) -> date | None:
    if text == "today":
        return today
    if text in YESTERDAY:
        return today - timedelta(days=1)
    if match := _AGO.match(text):
        return _ago(match, today)
    if text in ("last week", "a week ago"):
        return today - timedelta(days=7)
    if (match := _WEEKDAY.match(text)) and match.group(2) in _WEEKDAYS:
        back = (today.weekday() - _WEEKDAYS[match.group(2)]) % 7 or 7
        return today - timedelta(days=back)
    return None


def _read(text: str, today: date) -> date | None:
    return _relative(text, today) or _numeric(text, today) or _named_month(text, today)


# ----- when, in words --------------------------------------------------------------------------------------
# A minimal reading of "yesterday evening", "last night", "this morning", "the weekend", "since September"
# on top of `parse_date`, with the parts of the day kept as data (flows/vocab/<locale>/times.toml).

PARTS = ("morning", "afternoon", "evening", "night")
_WEEKEND = re.compile(r"^(?:at |over |on )?(?:the |last |this )?weekend$")
_SINCE = re.compile(
    r"^(?:since|from|in|back in|during|around|about|early|late|end of|start of) (?:last )?([a-z]+)$"
)
_FILLER = re.compile(r"^(?:it was |it happened |happened |about |around |maybe |i think |on )+")


@dataclass(frozen=True, slots=True)
class WhenResult:
    """When something happened: a date (never in the future), maybe a part of the day, or why not."""

    value: date | None
    part: str | None  # "morning" | "afternoon" | "evening" | "night"
    error: str | None  # "future" | "unclear"
    text: str


def _times(locale: str) -> dict[str, tuple[str, ...]]:
    table = vocab.table(locale, "times")
    return {part: tuple(understand.fold(str(w)) for w in table.get(part, ())) for part in PARTS}


def parse_part_of_day(text: str, locale: str = "en") -> str | None:
    """ "in the evening", "last night", "about 9 at nite" -> the part of the day named, if exactly one."""
    found = understand.spot(text, _times(locale))
    return found[0] if len(found) == 1 else None


def _without_part(said: str, part: str, locale: str) -> str:
    for word in sorted(_times(locale)[part], key=len, reverse=True):
        said = re.sub(rf"\b(?:in the |at |during the )?{re.escape(word)}\b", " ", said)
    return " ".join(said.split())


def _day_word(rest: str, text: str, today: date, locale: str) -> DateResult | None:
    """ "this" / "last" / "yesterday" left over from "this morning", "last night", "yesterday evening"."""
    days = vocab.table(locale, "times").get("days", {})
    if rest in (understand.fold(w) for w in days.get("yesterday", ())):
        return DateResult(value=today - timedelta(days=1))
    today_words = [understand.fold(w) for w in days.get("today", ())]
    if rest in today_words or (not rest and understand.fold(text) in today_words):
        return DateResult(value=today)
    return None


def parse_when(text: str, today: date, locale: str = "en") -> WhenResult:
    """A typed "when": the date (relative to `today`, never after it) and the part of the day if named."""
    said = " ".join(text.lower().replace("’", "'").split()).strip(" .!?,")
    part = parse_part_of_day(text, locale)
    rest = _FILLER.sub("", _without_part(said, part, locale) if part else said).strip()
    found = _day_word(rest, text, today, locale) if part else None
    found = found or _read_words(rest, today)
    return WhenResult(value=found.value, part=part, error=found.error, text=text.strip()[:200])


def _read_words(rest: str, today: date) -> DateResult:
    if _WEEKEND.match(rest):  # the most recent Saturday before today
        back = (today.weekday() - 5) % 7 or 7
        return DateResult(value=today - timedelta(days=back))
    if (match := _SINCE.match(rest)) and match.group(1) in _MONTHS:
        month = _MONTHS[match.group(1)]
        year = today.year if month <= today.month else today.year - 1
        return DateResult(value=date(year, month, 1))
    return parse_date(rest, today)
