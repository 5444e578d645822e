"""What people actually type, and what they should see: found by using the bot as different people would.

Each test is one problem a person hit in a walk-through (frightened and in a hurry, a witness, a parent, a
worker for an organisation, someone with little English, someone in danger mid-report), written as the
transcript that now works.
"""

from __future__ import annotations

import pytest

from tests.flows.chat import REFERENCE, Chat, go_to, said


def test_whatever_is_typed_at_the_welcome_starts_the_report() -> None:
    # Before: "yes pls", "hi" or "I want to report" at the welcome re-sent the whole welcome, forever.
    for typed in ("yes pls", "hi", "I want to report something", "me"):
        chat = Chat()
        chat.send("hello")
        assert said(chat.send(typed), "Is it happening now?"), typed
        assert chat.step == "safety"


def test_a_command_at_the_welcome_still_works() -> None:
    chat = Chat()
    chat.send("hello")
    assert said(chat.send("help"), "You can type these words")
    assert chat.step == "welcome"
    assert chat.send("stop")[0].startswith("OK, we have stopped")


@pytest.mark.parametrize(
    ("step", "typed", "stored"),
    [
        ("safety", "nah", "no"),
        ("safety", "nope", "no"),
        ("safety", "no thx", "no"),
        ("harm_hurt", "yes pls", "yes"),
        ("harm_hurt", "ya", "yes"),
        ("harm_hurt", "dunno", "not_sure"),
        ("harm_hurt", "i dont know", "not_sure"),
        ("support", "yes pls", "yes"),
        ("support", "nah", "no"),
        ("again", "many times", "ongoing"),
        ("again", "never", "first"),
        ("when_time", "nite", "night"),
        ("role", "me", "victim"),
        ("role", "i saw it", "witness"),
        ("role", "my son", "someone_else"),
        ("role", "organization", "organisation"),
    ],
)
def test_short_and_misspelt_answers_are_understood(step: str, typed: str, stored: str) -> None:
    chat = go_to(Chat(), step)
    replies = chat.send(typed)
    assert chat.step != step, replies
    assert chat.answers[step] == stored


@pytest.mark.parametrize("typed", ["yesturday", "yesterdy", "yday", "Yesterday."])
def test_yesterday_misspelt_is_yesterday(typed: str) -> None:
    chat = go_to(Chat(), "when")
    assert said(chat.send(typed), "What time of day")
    assert chat.answers["when"]["date"] == "2026-03-17"  # type: ignore[index]


@pytest.mark.parametrize("typed", ["last friday", "friday", "on friday"])
def test_last_friday_is_the_friday_before(typed: str) -> None:
    chat = go_to(Chat(), "when")
    chat.send(typed)
    assert chat.answers["when"]["date"] == "2026-03-13"  # type: ignore[index]


def test_idk_where_there_is_no_not_sure_option_moves_on_as_skipped() -> None:
    # Before: "Has this happened before?" had no "not sure", so a witness typing "idk" was stuck.
    for typed in ("idk", "not sure", "dont know"):
        chat = go_to(Chat(), "again")
        assert said(chat.send(typed), "the person or people who did it"), typed
        assert chat.answers["again"] is None


def test_the_emergency_step_re_asks_briefly_not_the_whole_list_again() -> None:
    chat = go_to(Chat(), "safety")
    chat.send("yes")
    reply = chat.send("they shouted at me in the shop")
    assert len(reply) == 2
    assert "18000" not in "\n".join(reply)
    assert said(reply[-1:], "I'm safe now")
    assert chat.keys() == ["safe", "stop"]
    assert said(chat.send("im safe"), "Which of these fits you best?")


def test_the_review_re_asks_briefly_not_the_whole_summary_again() -> None:
    chat = go_to(Chat(), "review")
    reply = chat.send("skip")
    assert said(reply, "can't skip this one")
    assert "Who:" not in "\n".join(reply)
    assert said(reply[-1:], "What would you like to do?")
    assert chat.keys() == ["send", "change", "delete"]
    assert said(chat.send("change"), "Which answer do you want to change?")
    assert said(chat.send("summary"), "Here is your report", "Who:")


@pytest.mark.parametrize("role", ["3", "4"])
def test_reporting_for_another_person_is_not_told_who_you_are(role: str) -> None:
    chat = go_to(Chat(), "role")
    chat.send(role)
    reply = go_to(chat, "why").last.text
    assert "who you are" not in reply
    assert said([reply], "the person")


def test_a_victim_still_reads_about_themselves_at_why() -> None:
    chat = go_to(Chat(), "why")
    assert said([chat.last.text], "wrong about who you are")


def test_an_organisation_is_not_asked_whether_it_would_know_them_again() -> None:
    chat = go_to(Chat(), "role")
    chat.send("For an organisation")
    go_to(chat, "offender_known")
    assert said(chat.send("no"), "Was anyone hurt?")
    assert "offender_recognise" not in chat.answers


def test_someone_reporting_for_another_person_is_asked_about_that_person() -> None:
    chat = go_to(Chat(), "role")
    chat.send("For someone else")
    go_to(chat, "offender_known")
    reply = chat.send("no")
    assert said(reply, "the person it happened to")
    assert chat.step == "offender_recognise"


def test_damage_is_not_asked_as_if_the_things_were_yours() -> None:
    chat = go_to(Chat(), "harm_property")
    assert "things you own" not in chat.last.text


def test_a_reference_on_its_own_asks_for_its_status() -> None:
    chat = go_to(Chat(), "why")
    chat.send("hc-7k3q-9xpd")
    assert chat.result.status_query == REFERENCE


def test_status_on_its_own_says_how_to_use_it() -> None:
    chat = go_to(Chat(), "why")
    reply = chat.send("status")
    assert chat.result.status_query is None
    assert said(reply[:1], "type status and then your reference", "HC-7K3Q-9XPD")
    assert "does not look like" not in reply[0]
    assert said(reply[-1:], "Why do you think it happened?")


def test_the_danger_reminder_says_how_to_get_help_without_speaking() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("he is outside my door now")
    assert said(reply[:1], "call 999", "type 999")
    assert chat.step == "story"


def test_contact_says_plainly_who_learns_your_details() -> None:
    chat = go_to(Chat(), "contact")
    assert "unless you say yes" not in chat.last.text
    assert said([chat.last.text], "only")


def test_asking_for_support_then_no_contact_is_told_support_cannot_reach_you() -> None:
    chat = go_to(Chat(), "support")
    assert said(chat.send("yes"), "contact")
    assert said([chat.last.text], "support service can only")
    chat = go_to(Chat(), "support")
    chat.send("no")
    assert "support service can only" not in chat.last.text


def test_the_review_shows_the_contact_details_to_check_them() -> None:
    chat = go_to(Chat(), "contact")
    chat.send("By phone or email")
    chat.send("Sara")
    chat.send("sara@example.com")
    chat.send("skip")
    chat.send("skip")
    review = go_to(chat, "review").last.text
    assert "Contact: By phone or email, Sara, sara@example.com" in review


def test_the_review_shows_hurt_and_damage() -> None:
    chat = go_to(Chat(), "harm_hurt")
    chat.send("no")
    chat.send("yes")
    review = go_to(chat, "review").last.text
    assert "Hurt: No" in review
    assert "Damage: Yes" in review


def test_the_review_shows_the_date_then_the_words_used() -> None:
    chat = go_to(Chat(), "when")
    chat.send("yesterday")
    chat.send("evening")
    review = go_to(chat, "review").last.text
    assert "When: 17/03/2026 (Yesterday), Evening" in review
    chat = go_to(Chat(), "when")
    chat.send("last friday")
    chat.send("skip")
    assert "When: 13/03/2026 (last friday)" in go_to(chat, "review").last.text


def test_a_report_with_most_things_skipped_lists_them_on_one_line() -> None:
    chat = go_to(Chat(), "role")
    while chat.step != "review":
        chat.send("skip")
    review = chat.last.text
    assert review.count("Skipped") == 1
    assert "Skipped: Who you are, Your words, What happened" in review
    assert "Shared with: Nobody" in review
