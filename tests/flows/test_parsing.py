"""What people type: dates, phone numbers, emails, references, commands and words that suggest danger."""

from __future__ import annotations

from datetime import date

import pytest

from flows.contact import email_address, parse_reach, phone_number
from flows.danger import suggests_danger
from flows.dates import parse_date
from flows.references import parse_reference, status_code, status_request
from flows.words import command

TODAY = date(2026, 3, 18)  # a Wednesday


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("12/03/2026", date(2026, 3, 12)),
        ("12/03/26", date(2026, 3, 12)),
        ("1/2", date(2026, 2, 1)),
        ("25/12", date(2025, 12, 25)),  # no year and not yet this year: last year
        ("12.3.2025", date(2025, 3, 12)),
        ("2025-11-05", date(2025, 11, 5)),
        ("12 March", date(2026, 3, 12)),
        ("12th of March 2024", date(2024, 3, 12)),
        ("March 2nd", date(2026, 3, 2)),
        ("today", TODAY),
        ("Yesterday", date(2026, 3, 17)),
        ("last Tuesday", date(2026, 3, 17)),
        ("last wednesday", date(2026, 3, 11)),
        ("on Friday", date(2026, 3, 13)),
        ("3 days ago", date(2026, 3, 15)),
        ("a week ago", date(2026, 3, 11)),
        ("two weeks ago", date(2026, 3, 4)),
    ],
)
def test_dates_people_type(typed: str, expected: date) -> None:
    assert parse_date(typed, TODAY).value == expected


@pytest.mark.parametrize(("typed", "error"), [("19/03/2026", "future"), ("tomorrow", "future"), ("31/02/2026", "unclear"), ("soon", "unclear"), ("", "unclear")])  # fmt: skip
def test_dates_refused(typed: str, error: str) -> None:
    assert parse_date(typed, TODAY) == parse_date(typed, TODAY)
    assert parse_date(typed, TODAY).error == error


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("07700 900123", "+447700900123"),
        ("07700-900-123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+44 (0)7700 900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
        ("(020) 7946 0000", "+442079460000"),
        ("01632 960001", "+441632960001"),
        ("0770 090", None),
        ("077009001234", None),
        ("+44 7700 90012", None),  # a digit short
        ("07700 900123 ext 12", None),  # an extension would be dropped unseen
        # Numbers from other countries, once UK-only (issue 12): with their + or 00 and country code.
        ("+1 202 555 0100", "+12025550100"),
        ("+48 601 234 567", "+48601234567"),
        ("0048 601 234 567", "+48601234567"),
        ("+353 85 123 4567", "+353851234567"),
        ("601 234 567", None),  # without its country code it is read as a (wrong) UK number
        ("+48 601 234", None),
        ("phone me", None),
        ("", None),
    ],
)
def test_phone_numbers(typed: str, expected: str | None) -> None:
    assert phone_number(typed) == expected


def test_emails_and_mixed_contact() -> None:
    assert email_address("Sam@Example.COM") == "Sam@example.com"
    assert email_address("not an email") is None
    assert email_address("a@b") is None
    assert email_address("sam@example.com.") == "sam@example.com"  # the full stop ends the sentence
    assert email_address("a..b@example.com") is None
    assert email_address("sam@exa_mple.com") is None
    assert email_address("amira@bücher.de") == "amira@bücher.de"
    both = parse_reach("+48 601 234 567 or amira@example.pl")
    assert (both.ok, both.phone, both.email) == (True, "+48601234567", "amira@example.pl")
    assert not parse_reach("email me at sam@").ok
    both = parse_reach("07700 900123 or sam@example.com")
    assert (both.ok, both.phone, both.email) == (True, "+447700900123", "sam@example.com")
    assert not parse_reach("sam@example.com and 12345").ok
    assert not parse_reach("a@b.com c@d.com").ok


@pytest.mark.parametrize(
    "text",
    [
        "He's outside my door",
        "it's happening now",
        "please help me",
        "they're following me home",
        "he has a knife",
        "he pulled a gun",
        "they said they are going to kill me",
        "I can't get away",
        "someone is outside my house",
        "they are coming back",
    ],
)
def test_danger_is_noticed(text: str) -> None:
    assert suggests_danger(text)


@pytest.mark.parametrize(
    "text",
    [
        "He shouted at me last week.",
        "I used a butter knife to open the letter.",
        "They wrote on my wall.",
        "",
    ],
)
def test_ordinary_words_do_not_raise_the_alarm(text: str) -> None:
    assert not suggests_danger(text)


def test_commands_and_references() -> None:
    assert [command(t) for t in ["/HELP", "help!", "Back.", "/start@ReportBot", "emergency", "stop it"]] == [
        "help",
        "help",
        "back",
        "start",
        "999",
        None,
    ]
    assert status_request("status hc-7k3q-9xpd") == (True, "HC-7K3Q-9XPD")
    assert status_request("/status HC 7K3Q 9XPD") == (True, "HC-7K3Q-9XPD")
    assert status_request("status: what?") == (True, None)
    assert status_request("statuses") == (False, None)
    assert parse_reference("HC7K3Q9XPD") == "HC-7K3Q-9XPD"


def test_a_secret_code_may_follow_the_reference() -> None:
    assert status_request("status HC-7K3Q-9XPD k7mq-4xtd") == (True, "HC-7K3Q-9XPD")
    assert status_code("status HC-7K3Q-9XPD k7mq-4xtd") == "k7mq4xtd"
    assert status_code("/status hc 7k3q 9xpd K7MQ 4XTD") == "k7mq4xtd"
    assert status_code("status HC-7K3Q-9XPD") is None
    assert status_code("HC-7K3Q-9XPD") is None


def test_superscript_and_other_script_digits_do_not_crash_a_choice() -> None:
    from tests.flows.chat import Chat, go_to

    chat = go_to(Chat(), "role")
    chat.send("²")
    assert chat.step == "role"  # not a number anyone can pick: asked again
    chat.send("١")  # Arabic-Indic one: a real decimal digit, so it picks the first option
    assert chat.answers["role"] == "victim"
