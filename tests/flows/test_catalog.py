"""The words: every key the code uses exists in every catalog, none is unused, and all of it is plain English."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import textstat
from textstat.textstat import textstatistics

from bot import limits
from bot.channels.telegram import send as telegram
from bot.channels.web import page as web
from flows import catalog
from flows.catalog import CATALOGS, placeholders
from flows.report import REPORT_FLOW
from tests.each import check_each

# Realistic values for every placeholder a catalog may use.
SAMPLES = {
    "service_name": "Report Hate Townsville",
    "operator": "Townsville Council",
    "reference": "HC-7K3Q-9XPD",
    "code": "k7mq-4xtd",
    "next_steps": "A member of staff will read your report within 3 working days.",
    "partners": "Townsville Police: They can look into it.\nStop Hate UK: They can give you support.",
    "name": "Stop Hate UK",
    "does": "They can give you support.",
    "summary": "Who: It happened to me.\nWhat: Verbal abuse.\nWhen: Today.",
    "value": "It happened to me",
    "count": 2,
    "services": "Stop Hate UK, for anyone: 0800 138 1625",
    "for_whom": "anyone",
    "contact": "0800 138 1625",
    "state": "being looked at",
    "submitted_on": "12/03/2026",
    "reply": "We have passed your report to the police.",
    "minutes": 7,
    "service": "Tell MAMA",
    "said": "yes, a lady in the shop saw it",
}
FRAGMENTS = {
    "review.files",
    "review.shared_location",
    "review.said",
    "consent.partner",
    "done.support_line",
}
# Channel adapters and the abuse limits read a few words of their own, from a table named after them.
CHANNEL_KEYS = telegram.CATALOG_KEYS | limits.CATALOG_KEYS | web.CATALOG_KEYS
FACTS = Path(__file__).resolve().parents[3] / "shared" / "FACTS.md"


def channel_keys() -> set[str]:
    """Keys the channel adapters in bot/ read themselves, as `catalog.text(locale, "table.key")`."""
    bot = Path(catalog.__file__).resolve().parents[1] / "bot"
    source = "\n".join(p.read_text() for p in sorted(bot.rglob("*.py")))
    return set(re.findall(r"catalog\.text\(\s*[^,()]+,\s*[\"']([a-z_]+\.[a-z_.\-]+)[\"']", source))


def used_keys() -> set[str]:
    return set(REPORT_FLOW.message_keys()) | channel_keys() | set(CHANNEL_KEYS)


def texts() -> list[tuple[str, str, str]]:
    return [(locale, key, text) for locale, cat in CATALOGS.items() for key, text in sorted(cat.items())]


def test_there_is_an_english_catalog_and_the_code_uses_keys_from_it() -> None:
    assert "en" in CATALOGS
    assert len(REPORT_FLOW.message_keys()) > 100


@pytest.mark.parametrize("locale", sorted(CATALOGS))
def test_every_key_the_code_uses_exists(locale: str) -> None:
    missing = sorted(used_keys() - set(CATALOGS[locale]))
    assert missing == []


@pytest.mark.parametrize("locale", sorted(CATALOGS))
def test_no_catalog_has_keys_nobody_uses(locale: str) -> None:
    unused = sorted(set(CATALOGS[locale]) - used_keys())
    assert unused == []


def test_placeholders_agree_across_locales_and_are_all_known() -> None:
    english = CATALOGS["en"]
    for locale, cat in CATALOGS.items():
        for key, text in cat.items():
            names = placeholders(text)
            assert names <= set(SAMPLES), (locale, key, names - set(SAMPLES))
            assert names == placeholders(english[key]), (locale, key)


def test_the_code_names_no_catalog_key_outside_what_the_flow_declares() -> None:
    """A literal `say("x.y")` in the source must be declared, or `message_keys` would not be the whole list."""
    source = "\n".join(p.read_text() for p in Path(catalog.__file__).parent.glob("*.py"))
    literal = set(re.findall(r'say\(\s*f?"([a-z_]+\.[a-z_.\-]+)"', source))
    assert literal, "the pattern should find the engine's own keys"
    assert literal <= REPORT_FLOW.message_keys()


def fill(text: str) -> str:
    return text.format(**{k: v for k, v in SAMPLES.items() if k in placeholders(text)})


# Readability per language. English: Flesch reading ease. Polish: the Gunning fog index with Polish
# syllable counting (FOG-PL: words of four syllables or more are hard; textstat 0.7.8 has it as
# `set_lang("pl")`; 7-9 is plain Polish), for messages of FOG_PL_FROM words or more (on a button-sized text
# one long word swings the index past 14). Languages textstat has no formula for (Romanian, Urdu): every
# sentence at most SENTENCE_MOST words. The sentence limit holds in every language.
SENTENCE_MOST = 25
FOG_PL_MOST = 9.0
FOG_PL_FROM = 10
_SENTENCE_END = re.compile(r"(?<=[.!?۔؟])\s+|\n+")


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def assert_readable(locale: str, key: str, filled: str) -> None:
    longest = max((len(s.split()) for s in sentences(filled)), default=0)
    assert longest <= SENTENCE_MOST, f"{locale} {key}: a sentence of {longest} words: {filled}"
    if locale == "en":
        score = textstat.flesch_reading_ease(filled)
        assert score >= 60, f"{key}: {score:.0f}: {filled}"
    elif locale == "pl" and len(filled.split()) >= FOG_PL_FROM:
        polish = textstatistics()
        polish.set_lang("pl")
        fog = polish.gunning_fog(filled)
        assert fog <= FOG_PL_MOST, f"{locale} {key}: FOG-PL {fog:.1f}: {filled}"


@pytest.mark.filterwarnings("ignore:There is no easy words vocabulary")
@pytest.mark.parametrize("locale", sorted(CATALOGS))
def test_every_message_is_easy_to_read(locale: str) -> None:
    """Every message of the language's catalog; a failure names each message that failed."""
    check_each(
        [(key, text) for loc, key, text in texts() if loc == locale],
        lambda message: easy_to_read(locale, *message),
        lambda message: f"{locale} {message[0]}",
    )


def easy_to_read(locale: str, key: str, text: str) -> None:
    filled = fill(text)
    if key == "language.name":  # a language's own name, shown in a list
        assert len(filled) <= 24 and "\n" not in filled
        return
    if key.startswith("option."):  # button labels: a few words, short enough for WhatsApp and Telegram
        assert len(filled) <= 24, filled
        assert "\n" not in filled
        return
    if key in FRAGMENTS or key.startswith(("review.line.", "status.state.")):
        # pieces of a longer message (scored there, below), not sentences of their own
        assert len(text) <= 40 and "\n" not in text, key
        return
    assert_readable(locale, key, filled)


def test_option_keys_are_short_ascii_for_callback_data() -> None:
    keys = [key.removeprefix("option.") for key in CATALOGS["en"] if key.startswith("option.")]
    for key in keys:
        assert key.isascii() and re.fullmatch(r"[a-z_]{1,20}", key), key


def test_emergency_numbers_are_the_ones_in_facts() -> None:
    emergency = CATALOGS["en"]["emergency.ask"]
    for number in ("999", "112", "18000", "emergencySMS", "register", "999 BSL", "55"):
        assert number in emergency
    assert "101" in CATALOGS["en"]["done.police"] and "101" in CATALOGS["en"]["done.police_not_told"]
    for key in ("done.police", "done.police_not_told", "access.no_calls"):  # wherever 101 is offered
        assert "18001 101" in CATALOGS["en"][key], key
    if FACTS.exists():  # the numbers we state are all in FACTS.md
        facts = FACTS.read_text()
        for number in ("999", "112", "18000", "55", "101", "emergencySMS", "999 BSL", "999bsl.co.uk"):
            assert number in facts
        for number in ("116 123", "0800 1111"):  # Samaritans, Childline
            assert number in facts
    stated = set()
    for text in CATALOGS["en"].values():
        stated.update(re.findall(r"(?<![\d/])\d{2,5}(?![\d/])", text))
    # Only FACTS.md numbers, plus the example phone (an Ofcom drama number), times and example dates.
    assert "116 123" in CATALOGS["en"]["alarm.self_harm"] and "0800 1111" in CATALOGS["en"]["alarm.self_harm"]
    allowed = {"999", "112", "18000", "18001", "55", "101", "07700", "900123", "12", "2025", "6pm"}
    assert stated <= allowed | {"116", "123", "0800", "1111"}, stated  # + Samaritans, Childline


def test_111_is_not_stated_because_facts_md_does_not_list_it() -> None:
    # (as a number of its own: Childline's 0800 1111 is in FACTS.md)
    assert not any(re.search(r"(?<!\d)111(?!\d)", text) for text in CATALOGS["en"].values())


def test_the_review_summary_as_shown_is_easy_to_read() -> None:
    """The review message built from its real pieces (with sample answers), not from a stand-in."""
    en = CATALOGS["en"]
    values = {
        "role": en["option.victim"],
        "what": f"{en['option.verbal']}, {en['option.online']}",
        "why": en["option.race"],
        "story": "He shouted at me in the street.",
        "when": "17/03/2026 (last Tuesday), " + en["option.evening"],
        "where": "High Street",
        "again": en["option.first"],
        "offender": "A tall man in a red coat.",
        "harm": en["option.no"],
        "witnesses": en["option.yes"],
        "evidence": en["review.files"].format(count=2),
        "damage": en["option.not_sure"],
        "contact": en["option.anonymous"],
        "consent": en["option.none"],
        "skipped": f"{en['option.support']}, {en['option.evidence']}",
    }
    summary = "\n".join(en[f"review.line.{group}"].format(value=value) for group, value in values.items())
    text = en["review.ask"].format(summary=summary)
    assert textstat.flesch_reading_ease(text) >= 60, text
