"""Free recall first, and nothing the person types is lost: transcripts of the conversations the issue
"Own words" describes, each failing on the flow before it."""

from __future__ import annotations

from bot.render import as_text
from flows.report import REPORT_FLOW
from flows.types import Offender
from tests.flows.chat import Chat, go_to, said

STORY = "A man grabbed my hijab at the bus stop and called me a terrorist"


def test_after_safety_and_role_the_story_comes_before_the_specific_questions() -> None:
    chat = go_to(Chat(), "role")
    assert said(chat.send("It happened to me"), "In your own words, what happened?")
    chat.send(STORY)
    assert said(chat.send("done"), "Which of these happened? Pick all that fit")


def test_a_story_typed_at_the_welcome_is_kept_and_reaches_the_review_and_the_report() -> None:
    chat = Chat()
    chat.send("hi")
    reply = chat.send(STORY)
    assert said(reply[:1], "I've added that to what happened.")
    assert said(reply[-1:], "Is it happening now?")  # and the conversation goes on
    chat.send("no")
    # At the story question they are told they have already started, and asked for more.
    assert said(chat.send("It happened to me"), "told us some of what happened already", "more")
    chat.send("He pulled it hard and laughed.")
    chat.send("that's it")
    review = go_to(chat, "review").last.text
    assert "Your words: A man grabbed my hijab" in review
    chat.send("send")
    report = chat.result.submit
    assert report is not None
    assert report.description == f"{STORY}\n\nHe pulled it hard and laughed."


def test_a_story_sent_as_the_very_first_message_is_kept() -> None:
    chat = Chat()
    reply = chat.send(STORY)
    assert said(reply, "I've added that to what happened.", "Hello. This is")
    assert chat.answers["story"] == [STORY]


def test_words_at_a_question_they_do_not_answer_join_the_story_and_the_question_is_asked_again() -> None:
    chat = go_to(Chat(), "safety")
    reply = chat.send("a group of lads shouted at me outside the shop")
    assert said(reply[:1], "I've added that to what happened.")
    assert said(reply[-1:], "Is it happening now?")
    assert chat.step == "safety" and "safety" not in chat.answers
    assert chat.answers["story"] == ["a group of lads shouted at me outside the shop"]
    chat = go_to(Chat(), "again")
    chat.send("the same boys were there again today laughing")
    assert chat.step == "again"
    go_to(chat, "review")
    chat.send("send")
    assert chat.result.submit is not None
    assert chat.result.submit.description == "the same boys were there again today laughing"


def test_no_at_more_to_add_ends_the_story_and_is_never_part_of_it() -> None:
    for typed in ("no", "nah", "that's it", "I'm done", "send it", "nothing else", "No."):
        chat = go_to(Chat(), "story")
        chat.send(STORY)
        assert said(chat.send(typed), "Which of these happened? Pick all that fit"), typed
        assert chat.answers["story"] == [STORY], typed


def test_the_number_shown_for_skip_or_done_is_never_the_story() -> None:
    chat = go_to(Chat(), "story")
    assert chat.labels() == ["Done", "Skip"]
    chat.send("2")
    assert chat.step == "what" and chat.answers["story"] is None
    chat = go_to(Chat(), "story")
    chat.send(STORY)
    chat.send("2")
    assert chat.step == "what" and chat.answers["story"] == [STORY]


def test_one_number_per_message_keeps_a_pick_all_question_open_with_ticks() -> None:
    # Before: "3" answered "Why?" and the next "5" landed on the next question.
    chat = go_to(Chat(), "why")
    reply = chat.send("3")
    assert chat.step == "why" and chat.last.selected == ("sexual_orientation",)
    assert "3. Sexual orientation \u2713" in as_text(chat.last)
    assert said(reply, "Why do you think it happened?")
    chat.send("5")
    assert chat.step == "why" and chat.last.selected == ("sexual_orientation", "transgender")
    chat.send("5")  # a second time takes the tick away
    assert chat.last.selected == ("sexual_orientation",)
    assert said(chat.send("done"), "When did it happen?")
    assert chat.answers["why"] == ["sexual_orientation"]
    assert "when" not in chat.answers


def test_words_that_name_options_end_a_pick_all_question_with_what_was_ticked() -> None:
    chat = go_to(Chat(), "what")
    chat.send("2")
    assert said(chat.send("and they called me names"), "Why do you think it happened?")
    assert chat.answers["what"] == ["verbal", "physical"]
    assert said(chat.send("because I'm Muslim"), "When did it happen?")
    assert chat.answers["why"] == ["religion"]


def test_a_sentence_naming_no_option_ends_a_pick_all_question_and_joins_the_story() -> None:
    chat = go_to(Chat(), "what")
    chat.send("1")
    reply = chat.send("it was really scary and I didn't know what to do")
    assert said(reply, "I've added that to what happened.", "Why do you think it happened?")
    assert chat.answers["what"] == ["verbal"]
    assert chat.answers["story"] == ["it was really scary and I didn't know what to do"]


def test_refusals_at_typed_questions_are_skips_not_answers() -> None:
    for step, typed in [("offender", "nah"), ("offender", "I'd rather not say"), ("offender", "3")]:
        chat = go_to(Chat(), step)
        chat.send(typed)
        assert "offender" not in chat.answers or chat.answers["offender"] is None, typed
    for step, typed in [("where", "no"), ("where", "rather not say"), ("contact_notes", "nope")]:
        chat = go_to(Chat(), "contact") if step == "contact_notes" else go_to(Chat(), step)
        if step == "contact_notes":
            chat.send("Phone call")
            go_to(chat, "contact_notes")
        chat.send(typed)
        assert chat.step != step and chat.answers[step] is None, typed
    chat = go_to(Chat(), "offender")
    chat.send("nah")
    go_to(chat, "review")
    assert "Who did it" not in chat.last.text.split("Skipped")[0]
    chat.send("send")
    assert chat.result.submit is not None and chat.result.submit.offender == Offender(
        known="no", recognise="no"
    )


def test_changing_an_answer_from_the_review_replaces_it() -> None:
    chat = go_to(Chat(), "where")
    chat.send("High Street")
    go_to(chat, "review")
    chat.send("change")
    chat.send("where")
    assert said(chat.send("Mill Road"), "Where: Mill Road")
    assert "High Street" not in chat.last.text
    chat.send("change")
    chat.send("why")
    assert chat.last.selected == ("race",)  # what was picked before is shown ticked
    chat.send("religion")  # said in words: the new answer, not added to the old one
    assert chat.answers["why"] == ["religion"]


def test_changing_the_story_asks_replace_or_add_and_does_what_they_choose() -> None:
    chat = go_to(Chat(), "story")
    chat.send("He shouted at me.")
    go_to(chat, "review")
    chat.send("change")
    assert said(chat.send("your words"), "write it again, or add to what you wrote?")
    assert chat.keys() == ["replace", "add"]
    assert said(chat.send("write it again"), "In your own words")
    chat.send("He shouted at me and spat at my feet.")
    assert said(chat.send("done"), "Here is your report", "Your words: He shouted at me and spat")
    assert chat.answers["story"] == ["He shouted at me and spat at my feet."]
    chat.send("change")
    chat.send("2")  # Your words
    chat.send("add to it")
    chat.send("It was outside the library.")
    chat.send("no")
    assert chat.answers["story"] == ["He shouted at me and spat at my feet.", "It was outside the library."]
    assert chat.step == "review"


def test_writing_it_again_then_sending_nothing_keeps_the_old_words() -> None:
    chat = go_to(Chat(), "story")
    chat.send("He shouted at me.")
    go_to(chat, "review")
    chat.send("change")
    chat.send("your words")
    chat.send("replace")
    chat.send("done")
    assert chat.answers["story"] == ["He shouted at me."] and chat.step == "review"


def test_why_are_you_asking_explains_the_question_then_asks_it_again() -> None:
    chat = go_to(Chat(), "safety")
    for step in REPORT_FLOW.steps:
        assert f"{step}.why" in REPORT_FLOW.message_keys()
    for typed in ("why", "Why?", "why do you need this", "what for", "why are you asking"):
        reply = chat.send(typed)
        assert said(reply[:1], "safety comes first"), typed
        assert said(reply[-1:], "Is it happening now?")
        assert chat.step == "safety" and "story" not in chat.answers
    chat = go_to(Chat(), "contact")
    chat.send("Phone call")
    assert said(chat.send("why do you need my name"), "what to call you")


def test_a_date_and_part_of_day_in_words_skip_the_time_question() -> None:
    chat = go_to(Chat(), "when")
    assert said(chat.send("yesterday evening"), "Where did it happen?")
    assert chat.answers["when"] == {
        "choice": "typed",
        "date": "2026-03-17",
        "text": "yesterday evening",
        "part": "evening",
    }
    review = go_to(chat, "review").last.text
    assert "When: 17/03/2026 (yesterday evening)" in review and "Evening, " not in review
    chat.send("send")
    report = chat.result.submit
    assert report is not None and report.occurred_at_text == "yesterday evening"
    chat = go_to(Chat(), "when")
    assert said(chat.send("3 weeks ago"), "What time of day")


def test_a_typo_is_understood_but_a_short_word_is_never_guessed() -> None:
    chat = go_to(Chat(), "safety")
    chat.send("now")  # not "no"
    assert chat.step == "safety" and "safety" not in chat.answers
    chat.send("nope")
    assert chat.answers["safety"] == "no"
    chat = go_to(Chat(), "why")
    chat.send("relgion")
    assert chat.answers["why"] == ["religion"]


def test_a_long_answer_about_what_happened_ticks_the_options_and_is_kept_in_their_words() -> None:
    chat = go_to(Chat(), "what")
    reply = chat.send("he punched me in the face and called me names")
    assert chat.answers["what"] == ["verbal", "physical"]
    assert chat.answers["story"] == ["he punched me in the face and called me names"]
    assert said(reply, "I've added that to what happened.", "Why do you think it happened?")
    chat.send("because I'm Muslim")  # short: an answer, not part of the story
    assert chat.answers["story"] == ["he punched me in the face and called me names"]


def test_a_sentence_at_the_evidence_question_joins_the_account() -> None:
    chat = go_to(Chat(), "evidence")
    before = list(chat.answers.get("story") or [])
    replies = chat.send("he also threw my bag on the floor and laughed")
    assert said(replies, "added that to what happened")
    assert chat.step == "evidence"
    assert chat.answers["story"] == [*before, "he also threw my bag on the floor and laughed"]
    assert said(chat.send("I have a video"), "send a photo or video here"), "short words about evidence"
