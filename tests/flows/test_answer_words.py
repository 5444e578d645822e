"""Short answers that say more, every answer at the review, the police asked for where they are not a
choice, and the short message after sending: transcripts of four defects found in earlier sessions,
each failing on the flow before it."""

from __future__ import annotations

from dataclasses import replace

from flows.report import REPORT_FLOW
from flows.types import Inbound
from tests.flows.chat import Chat, go_to, said


def review_of(chat: Chat) -> str:
    go_to(chat, "consent")
    chat.send("nobody")
    assert chat.step == "review"
    return chat.last.text


# ----- 1. a yes or no that carries details -----------------------------------------------------------------


def test_yes_with_details_keeps_the_details_with_the_answer_at_the_review_and_in_the_report() -> None:
    chat = go_to(Chat(), "witnesses")
    reply = chat.send("yes a lady saw it")
    assert said(reply[:1], "I've added that to what happened.")
    assert chat.step == "evidence" and chat.answers["witnesses"] == "yes"
    review = review_of(chat)
    assert "Seen by others: Yes. You said: yes a lady saw it" in review
    chat.send("send")
    report = chat.result.submit
    assert report is not None and report.witnesses == "yes"
    assert report.description is not None and "yes a lady saw it" in report.description


def test_no_but_with_details_and_yes_twice_before_are_kept() -> None:
    chat = go_to(Chat(), "again")
    chat.send("yes, twice before")
    assert chat.answers["again"] == "before"
    go_to(chat, "witnesses")
    chat.send("no but my neighbour might know")
    assert chat.answers["witnesses"] == "no"
    assert chat.answers["story"] == ["yes, twice before", "no but my neighbour might know"]
    review = review_of(chat)
    assert "Before: It happened before. You said: yes, twice before" in review
    assert "Seen by others: No. You said: no but my neighbour might know" in review


def test_a_plain_yes_says_nothing_more_and_a_changed_answer_drops_the_old_words_from_the_line() -> None:
    chat = go_to(Chat(), "witnesses")
    assert not said(chat.send("yes it did"), "I've added that")
    assert "said" not in chat.answers
    chat = go_to(Chat(), "witnesses")
    chat.send("yes a lady saw it")
    review = review_of(chat)
    chat.send("change")
    chat.send("Seen by others")
    assert chat.step == "witnesses"
    review = chat.press("no")[-1]
    assert "Seen by others: No" in review and "You said: yes a lady saw it" not in review
    assert "yes a lady saw it" in review  # still in their own words: nothing they typed is dropped


def test_a_no_that_names_someone_they_know_is_not_taken_as_either() -> None:
    chat = go_to(Chat(), "offender_known")
    reply = chat.send("no but my neighbour might know")
    assert said(reply, "I've added that to what happened.", "Do you know who they are?")
    assert chat.step == "offender_known" and "offender_known" not in chat.answers
    assert chat.answers["story"] == ["no but my neighbour might know"]


# ----- 2. every answer at the review -------------------------------------------------------------------------


def test_the_review_shows_the_answers_about_who_did_it() -> None:
    chat = go_to(Chat(), "offender_known")
    chat.send("no")
    chat.send("not sure")
    review = review_of(chat)
    assert "You know who they are: No" in review
    assert "Would know them again: Not sure" in review

    chat = go_to(Chat(), "offender_known")
    chat.send("yes")
    review = review_of(chat)
    assert "You know who they are: Yes" in review and "Would know them again" not in review


def test_the_review_shows_every_other_answer_given() -> None:
    chat = go_to(Chat(), "role")
    chat.send("For someone else")
    chat.send("no")  # they do not know
    go_to(chat, "harm_hurt")
    chat.send("yes")
    chat.send("no")  # no doctor needed now
    go_to(chat, "contact")
    chat.send("Phone call")
    chat.send("Amira")
    chat.send("07700 900123")
    chat.send("after 6pm")
    chat.send("yes")  # a message may be left
    chat.send("my brother reads my texts")
    review = review_of(chat)
    for line in (
        "They know you told us: No",
        "Needs a doctor now: No",
        "Safe times: after 6pm",
        "OK to leave a message: Yes",
        "Contact is hard because: my brother reads my texts",
    ):
        assert line in review, line


# ----- 3. a typed answer that names what is not offered ----------------------------------------------------


def test_the_police_asked_for_where_the_report_is_kept_as_a_record_is_not_taken_as_continue() -> None:
    for typed in ("the police please", "police", "tell the police", "send it to the police"):
        chat = go_to(Chat().with_settings(partners=()), "record_only")
        reply = chat.send(typed)
        assert said(reply, "We can't send your report to the police from here", "call 101", "18001 101")
        assert chat.step == "record_only" and "record_only" not in chat.answers, typed
        assert not chat.answers.get("story")  # not part of what happened
        assert said(chat.send("continue"), "Here is your report")


def test_not_the_police_where_the_report_is_kept_as_a_record_goes_on() -> None:
    chat = go_to(Chat().with_settings(partners=()), "record_only")
    assert said(chat.send("not the police"), "Here is your report")


def test_agreeing_to_keep_it_as_a_record_goes_on_and_is_not_added_to_what_happened() -> None:
    chat = go_to(Chat().with_settings(partners=()), "record_only")
    assert said(chat.send("just keep it on record"), "Here is your report")
    assert not chat.answers.get("story")
    chat = go_to(Chat().with_settings(partners=()), "record_only")
    assert said(chat.send("he also spat at my feet as he left"), "I've added that to what happened.")
    assert chat.answers["story"] == ["he also spat at my feet as he left"]


def test_the_police_asked_for_at_the_review_is_not_send() -> None:
    chat = go_to(Chat(), "consent")
    chat.send("nobody")
    reply = chat.send("send it to the police")
    assert chat.result.submit is None and chat.step == "review"
    assert said(reply, "only goes to the ones under Shared with", "Change an answer")


def test_a_sentence_at_the_review_never_deletes_the_report() -> None:
    chat = go_to(Chat(), "consent")
    chat.send("nobody")
    chat.send("don't send it yet")
    assert chat.draft is not None and chat.step == "review" and not chat.result.erase
    chat.send("delete")
    assert chat.result.erase


def test_tell_the_police_at_the_question_of_who_gets_it_is_the_police() -> None:
    chat = go_to(Chat(), "consent")
    chat.send("tell the police")
    assert chat.answers["consent"] == ["police"]


# ----- 4. the message after sending ------------------------------------------------------------------------


def test_after_sending_one_short_calm_message_says_what_matters() -> None:
    chat = go_to(Chat(), "consent")
    chat.press("police")
    chat.press("done")
    ctx = replace(chat.ctx(), passphrase="k7mq-4xtd")
    done = [r.text for r in REPORT_FLOW.step(chat.draft, Inbound(text="send"), ctx).replies]
    main = done[0]
    assert said([main], "Your reference is HC-7K3Q-9XPD.", "Your secret code is k7mq-4xtd.")
    assert said([main], "A member of staff will read your report within 3 working days")
    assert said([main], "call 101", "18001 101", "call 999")
    assert len(main.split()) <= 115, len(main.split())  # it was six messages and 152 words
    assert len(done) == 2 and done[1].startswith("Support you can contact")


# ----- 5. words that are no date at the date question ------------------------------------------------------


def test_a_reason_typed_at_the_date_question_is_kept_and_the_date_asked_again() -> None:
    chat = go_to(Chat(), "when")
    reply = chat.send("because I am Muslim")
    assert said(reply[:1], "I've added that to what happened.")
    assert chat.step == "when" and "when" not in chat.answers
    assert chat.answers["story"][-1] == "because I am Muslim"
    chat.send("yesterday evening")
    assert chat.step == "where"
    chat.send("the 73 bus")
    go_to(chat, "consent")
    chat.send("nobody")
    chat.send("send")
    report = chat.result.submit
    assert report is not None and report.description is not None
    assert "because I am Muslim" in report.description


def test_a_date_that_cannot_be_read_is_asked_again_with_the_hint_and_not_added() -> None:
    for typed in ("last tusdy nite", "31/02", "on 45/13/2024", "banana"):
        chat = go_to(Chat(), "when")
        reply = chat.send(typed)
        assert not said(reply, "I've added that"), typed
        assert said(reply[:1], "Please pick one, or type a date like 12/03/2025."), typed
        assert chat.step == "when" and typed not in (chat.answers.get("story") or []), typed


def test_a_sentence_opening_with_words_for_an_answer_not_offered_is_not_taken_as_its_first_word() -> None:
    # "Has this happened before?" offers no "not sure": "no idea who" is not the "no" of "first time".
    chat = go_to(Chat(), "again")
    reply = chat.send("no idea who")
    assert said(reply[:1], "I've added that to what happened.")
    assert chat.step == "again" and chat.answers.get("again") is None
    for typed, meant in (
        ("no thanks", "first"),
        ("nope, first time", "first"),
        ("no it keeps happening", "ongoing"),
    ):
        chat = go_to(Chat(), "again")
        chat.send(typed)
        assert chat.answers.get("again") == meant, typed


def test_the_review_tells_apart_the_pieces_of_their_account() -> None:
    chat = go_to(Chat(), "story")
    chat.send("someone shouted at me on the bus")
    go_to(chat, "witnesses")
    chat.send("yes a lady saw it")
    review = review_of(chat)
    assert "Your words: someone shouted at me on the bus / yes a lady saw it" in review


def test_a_near_miss_never_drops_a_not() -> None:
    # A slip of the thumb changes letters, not the meaning: "it hasnt happened before" is not a near miss
    # of "it happened before", while "it hapened before" still is.
    for typed, meant in (("it hasnt happened before", "first"), ("it hapened before", "before")):
        chat = go_to(Chat(), "again")
        chat.send(typed)
        assert chat.answers.get("again") == meant, typed


def test_the_review_shows_all_their_words_to_check_unless_very_long() -> None:
    chat = go_to(Chat(), "story")
    first = "some lads threw an egg at me and shouted go home at the bus stop near the school gates"
    chat.send(first)
    go_to(chat, "harm_property")
    chat.send("they broke my glasses and my phone screen when they pushed me over")
    review = review_of(chat)
    assert (
        f"Your words: {first} / they broke my glasses and my phone screen when they pushed me over" in review
    )
