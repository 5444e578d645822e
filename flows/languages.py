"""Which languages the bot speaks, how a person's language is found, and how its text is shown. No I/O.

- A language is a catalog `flows/messages/<locale>.toml`; its own name ("Polski") is the catalog's
  `language.name`, and other names people type for it ("po polsku") are data in each
  `flows/vocab/<locale>/commands.toml` under `[languages]`.
- The platform may say which language the person uses (Telegram's `language_code`, the browser's
  `Accept-Language`): `pick` matches that to an enabled language. Where it cannot (WhatsApp, the
  console), the welcome lists the languages and the person may answer with one's name or number.
- `check` finds what would make a catalog unsafe to show: a missing key, different placeholders, or
  numbers (digit runs) that differ from English (999 must stay 999 in every language).
- Right-to-left text (Urdu) gets a right-to-left mark before each line that would otherwise start
  left to right (Latin letters, digits), so phones lay it out right to left; `directed` does it, once,
  for every reply of a step.
- Dates shown to the person are written the way their language writes them (Babel, `show_date`); dates
  they type are read in their language by `flows/dates.py` (dateparser).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date
from functools import cache, lru_cache

from babel.dates import format_date

from flows import catalog, vocab
from flows.types import Option, Outbound

DEFAULT = catalog.DEFAULT_LOCALE
OPTION_PREFIX = "lang_"  # option keys "lang_pl": short ASCII, fits Telegram's callback data
RTL = frozenset({"ar", "fa", "he", "ps", "sd", "ur", "yi"})
RLM = "\u200f"
# Babel's locale for dates shown to the person (British English, not American, for "en").
BABEL = {"en": "en_GB", "pl": "pl_PL", "ro": "ro_RO", "ur": "ur_PK"}
_TAG = re.compile(r"^[a-z]{2,3}(?:[-_][a-z0-9]{1,8})*$")
_DIGITS = re.compile(r"\d+")
_LTR_START = re.compile(r"^[\s\u200e\u200f]*[0-9A-Za-z\u00c0-\u024f+(\"']")


def shipped() -> tuple[str, ...]:
    """Every catalog there is, English first."""
    return tuple(sorted(catalog.CATALOGS, key=lambda locale: (locale != DEFAULT, locale)))


def own_name(locale: str) -> str:
    """A language's name in that language ("Polski", "Română", "اردو", "English")."""
    return catalog.text(locale, "language.name")


def option_key(locale: str) -> str:
    return f"{OPTION_PREFIX}{locale}"


def options(enabled: Sequence[str], current: str | None = None) -> tuple[Option, ...]:
    """The languages as options, by their own names (the current one left out when given)."""
    return tuple(Option(key=option_key(loc), label=own_name(loc)) for loc in enabled if loc != current)


def line(enabled: Sequence[str]) -> str:
    """The one short line that lists the languages by their own names: "English · Polski · Română"."""
    return " · ".join(own_name(locale) for locale in enabled)


def from_option(key: str, enabled: Sequence[str]) -> str | None:
    """The language a button or option key picks ("lang_pl", or "welcome:lang_pl" from an old keyboard)."""
    key = key.rpartition(":")[2]
    if not key.startswith(OPTION_PREFIX):
        return None
    locale = key.removeprefix(OPTION_PREFIX)
    return locale if locale in enabled else None


# ----- what the platform says -------------------------------------------------------------------------


def accept_language(header: str) -> tuple[str, ...]:
    """The language tags of an `Accept-Language` header, most wanted first (q=0 left out)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        tag = tag.strip().lower()
        if tag and quality > 0:
            ranked.append((-quality, index, tag))
    return tuple(tag for _, _, tag in sorted(ranked))


def pick(tags: Iterable[str], enabled: Sequence[str]) -> str | None:
    """The first enabled language among the platform's tags ("pl-PL" -> "pl"); None when none is."""
    for tag in tags:
        tag = tag.strip().lower()
        if not _TAG.match(tag):
            continue
        primary = re.split(r"[-_]", tag)[0]
        if primary in enabled:
            return primary
    return None


# ----- what the person types ---------------------------------------------------------------------------


def _plain(text: str) -> str:
    """Folded, and without accents: "Română" and "romana" are the same name."""
    text = unicodedata.normalize("NFKD", text.strip().lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


@cache
def _names(enabled: tuple[str, ...]) -> Mapping[str, str]:
    found: dict[str, str] = {}
    for locale in vocab.locales():
        for target, words in vocab.table(locale, "commands").get("languages", {}).items():
            if target in enabled:
                for word in words:
                    found.setdefault(_plain(str(word)), str(target))
    for locale in enabled:  # a language's own name always names it
        found[_plain(own_name(locale))] = locale
    return found


def forget() -> None:
    """Forget the names read so far (after the catalogs changed: only tests change them)."""
    _names.cache_clear()


def named(text: str, enabled: Sequence[str]) -> str | None:
    """The enabled language a whole message names ("Polski", "romana", "اردو"), if it names one."""
    said = _plain(text)
    return _names(tuple(enabled)).get(said) if said else None


# ----- checking a catalog ------------------------------------------------------------------------------


def digit_runs(text: str) -> Counter[str]:
    """The numbers in a text as written ("18001 101" -> 18001, 101): they must be the same in every language."""
    return Counter(_digits(text))


@lru_cache(maxsize=4096)  # catalog texts only: each is read once, not at every config check
def _digits(text: str) -> tuple[str, ...]:
    """The numbers in a text as written, sorted: equal for two texts when their `digit_runs` are."""
    return tuple(sorted(_DIGITS.findall(text)))


def check(locale: str, texts: Mapping[str, str], english: Mapping[str, str]) -> list[tuple[str, str]]:
    """What is wrong with one catalog, as (key, problem) pairs; empty when it is safe to show."""
    problems: list[tuple[str, str]] = []
    for key in sorted(english):
        if key not in texts:
            problems.append((key, "is missing (English has it)"))
            continue
        if key == "language.name":
            continue
        if catalog.placeholders(texts[key]) != catalog.placeholders(english[key]):
            want = ", ".join(sorted(catalog.placeholders(english[key]))) or "none"
            problems.append((key, f"has placeholders that differ from English (English has: {want})"))
        elif _digits(texts[key]) != _digits(english[key]):
            want = " ".join(sorted(digit_runs(english[key]).elements())) or "none"
            problems.append((key, f"has numbers that differ from English (English has: {want})"))
    problems.extend((key, "is not a key English has") for key in sorted(set(texts) - set(english)))
    return problems


# ----- showing text --------------------------------------------------------------------------------------


def is_rtl(locale: str) -> bool:
    return locale.split("_")[0].split("-")[0] in RTL


def _marked(text: str) -> str:
    return "\n".join(f"{RLM}{ln}" if _LTR_START.match(ln) else ln for ln in text.split("\n"))


def directed(message: Outbound, locale: str) -> Outbound:
    """A reply as a right-to-left language needs it: each line (and option label) that starts with
    Latin letters or digits gets a right-to-left mark first. Other languages: unchanged."""
    if not is_rtl(locale):
        return message
    labels = tuple(replace(o, label=_marked(o.label)) for o in message.options)
    return replace(message, text=_marked(message.text), options=labels)


def show_date(day: date, locale: str) -> str:
    """A date as the person's language writes it, digits as typed everywhere ("17/03/2026", "17.03.2026")."""
    shown = format_date(day, format="short", locale=BABEL.get(locale, BABEL[DEFAULT]))
    if locale == DEFAULT:
        return shown
    # Babel writes a two-digit year for some languages' short form: always the whole year, never ambiguous.
    return shown if str(day.year) in shown else format_date(day, format="medium", locale=BABEL[locale])
