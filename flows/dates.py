"""Reading the date someone types, UK style, relative to the local date. No I/O.

Accepts dd/mm/yyyy, dd/mm/yy, d/m, yyyy-mm-dd, "12 March", "March 12th 2025", "today", "yesterday",
"last Tuesday", "Tuesday", "3 days ago", "a week ago", "2 weeks ago". Never returns a future date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

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

_NUMERIC = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})(?:[/.\-](\d{2}|\d{4}))?$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_DAY_MONTH = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?(?: of)? ([a-z]+)(?:,? (\d{2}|\d{4}))?$")
_MONTH_DAY = re.compile(r"^([a-z]+) (\d{1,2})(?:st|nd|rd|th)?(?:,? (\d{2}|\d{4}))?$")
_AGO = re.compile(r"^(\d{1,3}|[a-z]+) (day|days|week|weeks) ago$")
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


def _read(text: str, today: date) -> date | None:
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    if match := _NUMERIC.match(text):
        day, month = int(match.group(1)), int(match.group(2))
        return date(_year(match.group(3), day, month, today), month, day)
    if match := _ISO.match(text):
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    if (match := _DAY_MONTH.match(text)) and match.group(2) in _MONTHS:
        day, month = int(match.group(1)), _MONTHS[match.group(2)]
        return date(_year(match.group(3), day, month, today), month, day)
    if (match := _MONTH_DAY.match(text)) and match.group(1) in _MONTHS:
        day, month = int(match.group(2)), _MONTHS[match.group(1)]
        return date(_year(match.group(3), day, month, today), month, day)
    if match := _AGO.match(text):
        raw = match.group(1)
        count = int(raw) if raw.isdecimal() else _NUMBER_WORDS.get(raw)
        if count is None:
            return None
        return today - timedelta(days=count * (7 if match.group(2).startswith("week") else 1))
    if text in ("last week", "a week ago"):
        return today - timedelta(days=7)
    if (match := _WEEKDAY.match(text)) and match.group(2) in _WEEKDAYS:
        back = (today.weekday() - _WEEKDAYS[match.group(2)]) % 7 or 7
        return today - timedelta(days=back)
    return None
