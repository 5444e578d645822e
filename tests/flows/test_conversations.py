"""Conversations with the report flow, written as transcripts: what the person sends, what the bot says."""

from __future__ import annotations

import json
from datetime import date

from flows.report import REPORT_FLOW
from flows.types import ContactDetails, Draft, Harm, Media, Offender, StatusInfo
from tests.flows.chat import REFERENCE, Chat, go_to, said


def test_a_victim_who_wants_a_call_back_sends_a_full_report() -> None:
    chat = Chat()
    assert said(chat.send("hi"), "Report Hate Townsville", "Townsville Council", "private", "999", "exit")
    assert chat.labels() == ["Continue"]
    assert said(chat.send("1"), "Is it happening now?")
    assert said(chat.send("No"), "Which of these fits you best?")
    assert said(chat.send("1"), "In your own words")  # free recall first, then the specific questions
    assert said(chat.send("A man shouted at me at the bus stop."), "Is there more")
    assert said(chat.send("He said I should go home."), "Is there more")
    assert said(chat.send("Done"), "Which of these happened? Pick all that fit")
    assert chat.last.multi
    assert said(chat.send("1, 4"), "Why do you think it happened?")
    assert said(chat.send("race and religion"), "When did it happen?")
    assert said(chat.send("Another date"), "What date was it?")
    assert said(chat.send("last Tuesday"), "What time of day")
    assert said(chat.send("Evening"), "Where did it happen?")
    assert chat.last.request_location
    assert said(chat.send("Bus stop on Mill Road, TS1 2AB"), "Has this happened before?")
    assert said(chat.send("It keeps happening"), "the person or people who did it")
    assert said(chat.send("Tall man, grey hoodie, about 40"), "Do you know who they are?")
    assert said(chat.send("no"), "Would you know them")
    assert said(chat.send("yes"), "Was anyone hurt?")
    assert said(chat.send("no"), "Was anything damaged?")
    assert said(chat.send("no"), "Did anyone else see it")
    assert said(chat.send("yes"), "photos, screenshots or videos")
    assert said(chat.photo("file-1"), "Send more, or choose Done")
    assert said(chat.photo("file-2"), "Send more, or choose Done")
    assert said(chat.press("done"), "support service")
    assert said(chat.send("yes"), "Which service would you like to get in touch with you?")
    assert said(chat.send("None of these"), "How would you like us to contact you")
    assert said(chat.send("Phone call"), "What name should we use?")
    assert said(chat.send("Amira"), "What phone number should we use")

    reply = chat.send("0770 090")  # too short: asked again, nothing lost
    assert said(reply, "does not look like a phone number")
    assert chat.step == "contact_phone"
    assert chat.answers["contact_name"] == "Amira"
    assert said(chat.send("07700 900123"), "When is it safe to contact you?")
    assert said(chat.send("Weekdays after 6pm"), "safe for us to leave a message")
    assert said(chat.send("no"), "anything that makes contact hard")
    assert said(
        chat.send("My brother reads my texts"), "Who can we send your report to?", "Townsville Police"
    )
    chat.press("police")
    assert chat.last.selected == ("police",)
    review = chat.press("done")
    assert said(review, "Here is your report", "Your words: A man shouted at me", "Bus stop on Mill Road")
    assert said(review, "Shared with: Townsville Police")
    assert chat.keys() == ["send", "change", "delete"]

    done = chat.send("Send report")
    report = chat.result.submit
    assert report is not None
    assert said(done, REFERENCE, "within 3 working days", "101", "Stop Hate UK", "0800 138 1625", "call 999")
    assert chat.result.erase is False
    assert report.role == "victim"
    assert report.someone_else_knows is None
    assert report.incident_types == ("verbal", "online")
    assert report.motivations == ("race", "religion")
    assert report.description == "A man shouted at me at the bus stop.\n\nHe said I should go home."
    assert report.occurred_on == date(2026, 3, 17)  # the Tuesday before Wednesday 18 March
    assert report.occurred_at_text == "last Tuesday, evening"
    assert report.location_text == "Bus stop on Mill Road, TS1 2AB"
    assert report.latitude is None and report.longitude is None
    assert report.repeat == "ongoing"
    assert report.offender == Offender("Tall man, grey hoodie, about 40", known="no", recognise="yes")
    assert report.injuries == Harm(hurt="no", property_damaged="no")
    assert report.witnesses == "yes"
    assert report.evidence == (Media("file-1", "image/jpeg"), Media("file-2", "image/jpeg"))
    assert report.support_requested is True
    assert report.anonymous is False
    assert report.contact == ContactDetails(
        name="Amira",
        phone="+447700900123",
        email=None,
        in_chat=False,
        safe_times="Weekdays after 6pm",
        notes="My brother reads my texts",
        by="phone",
        leave_message="no",
    )
    assert report.share_with == ("police",)


def test_an_anonymous_witness_is_told_the_honest_limits() -> None:
    chat = go_to(Chat(), "role")
    assert said(chat.send("I saw it happen"), "What happened?")
    go_to(chat, "contact")
    reply = chat.send("5")
    assert said(reply, "we will not contact you", "WhatsApp or Telegram", "can still see your account")
    assert said(reply, "might show who you are", "may not be able to look into it fully", "life is at risk")
    assert chat.step == "consent"
    assert said(chat.send("Nobody"), "Shared with: Nobody")
    done = chat.send("send")
    # Kept as a record only: it is "saved", not "sent", and the police have not been told.
    assert said(done, "We have your report", "as a record", "We have not sent it to the police", "call 101")
    assert not said(done, "has been sent")
    report = chat.result.submit
    assert report is not None
    assert report.role == "witness"
    assert report.anonymous is True
    assert report.contact is None
    assert report.share_with == ()


def test_reporting_for_someone_else_asks_whether_they_know() -> None:
    chat = go_to(Chat(), "role")
    assert said(chat.send("for someone else"), "Does the person know you are telling us?", "fine if not")
    assert said(chat.send("No"), "What happened?")
    go_to(chat, "review")
    chat.send("send")
    report = chat.result.submit
    assert report is not None
    assert (report.role, report.someone_else_knows) == ("someone_else", "no")


def test_an_organisation_is_not_asked_whether_the_person_knows() -> None:
    chat = go_to(Chat(), "role")
    assert said(chat.send("4"), "What is the name of the organisation?")
    assert said(chat.send("skip"), "In your own words, what happened?")
    assert "someone_else_knows" not in chat.answers


def test_happening_now_leads_to_999_and_the_ways_to_reach_it_then_goes_on() -> None:
    chat = go_to(Chat(), "safety")
    reply = chat.send("yes")
    assert said(
        reply, "call 999", "112", "safe place first", "18000", "emergencySMS", "register", "999 BSL", "55"
    )
    assert chat.keys() == ["safe", "stop"]
    assert said(chat.send("I'm safe now, continue"), "Which of these fits you best?")


def test_999_typed_mid_report_shows_help_then_returns_to_the_same_question() -> None:
    chat = go_to(Chat(), "story")
    chat.send("They threw a bottle at me.")
    assert said(chat.send("999"), "call 999", "18000")
    assert chat.step == "emergency"
    assert said(chat.press("safe"), "Is there more you want to add?")
    assert chat.step == "story"
    assert chat.answers["story"] == ["They threw a bottle at me."]
    chat.send("/emergency")
    assert chat.step == "emergency"
    chat.send("stop")
    assert chat.result.erase


def test_the_safety_net_fires_on_free_text_and_the_answer_is_still_kept() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("He's outside my door right now and he has a knife")
    assert said(reply[:1], "If you are in danger now, call 999")
    assert said(reply[-1:], "Is there more you want to add?")
    assert chat.answers["story"] == ["He's outside my door right now and he has a knife"]


def test_saying_you_are_safe_after_the_danger_reminder_is_not_taken_as_an_answer() -> None:
    # The reminder ends "We can go on with your report when you are ready": a person who answers
    # "I'm safe now" is thanked and asked the same question again; the words join no answer.
    chat = go_to(Chat(), "story")
    chat.send("He's outside my door right now and he has a knife")
    reply = chat.send("I'm safe now")
    assert said(reply[:1], "Thank you")
    assert said(reply[-1:], "Is there more you want to add?")
    assert chat.step == "story"
    assert chat.answers["story"] == ["He's outside my door right now and he has a knife"]
    chat.send("He ran off towards the park.")  # only straight after a reminder
    chat.send("ok")
    assert chat.answers["story"] == [
        "He's outside my door right now and he has a knife",
        "He ran off towards the park.",
        "ok",
    ]


def test_saying_you_are_safe_after_a_reminder_at_a_typed_question_answers_nothing() -> None:
    chat = go_to(Chat(), "offender")
    chat.send("the man who lives next door, he is outside now with a knife")
    assert chat.step == "offender_known"
    reply = chat.send("safe now")
    assert said(reply[:1], "Thank you")
    assert chat.step == "offender_known" and "offender_known" not in chat.answers


def test_the_safety_net_stays_quiet_for_ordinary_text() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("They shouted at me last week near the shops.")
    assert not said(reply, "999")


def test_back_returns_to_the_previous_question_with_the_answer_kept() -> None:
    chat = go_to(Chat(), "what")
    chat.send("1 3")
    assert chat.step == "why"
    assert said(chat.send("back"), "Which of these happened?")
    assert chat.last.selected == ("verbal", "property")
    assert chat.answers["what"] == ["verbal", "property"]
    chat.send("/back")
    assert chat.step == "story"
    chat.send("Back")
    assert chat.step == "role"
    chat.send("back")
    chat.send("back")
    assert chat.step == "welcome"
    assert said(chat.send("back"), "first question")
    assert chat.step == "welcome"


def test_every_question_can_be_skipped_and_is_recorded_as_skipped() -> None:
    chat = go_to(Chat(), "role")
    for _ in range(40):
        if chat.step == "review":
            break
        if chat.step == "record_only":
            chat.send("Continue")
            continue
        chat.send("skip")
    assert chat.step == "review"
    assert said([chat.last.text], "Skipped: Who you are, Your words, What happened, Why")
    assert "Who:" not in chat.last.text
    assert chat.answers["role"] is None and chat.answers["what"] is None and chat.answers["story"] is None
    assert said(chat.send("skip"), "can't skip this one")
    chat.send("send")
    report = chat.result.submit
    assert report is not None
    assert report.role is None and report.incident_types == () and report.description is None
    assert report.anonymous is True and report.share_with == ()


def test_change_an_answer_from_the_review_and_come_back_to_the_review() -> None:
    chat = go_to(Chat(), "review")
    assert said([chat.last.text], "When: 18/03/2026 (Today), Evening")
    assert said(chat.send("Change an answer"), "Which answer do you want to change?")
    assert said(chat.send("When"), "When did it happen?")
    assert said(chat.send("yesterday"), "What time of day")
    reply = chat.send("morning")
    assert chat.step == "review"
    assert said(reply, "When: 17/03/2026 (Yesterday), Morning", "Where: High Street")

    chat.send("change")
    chat.send("who you are")
    assert said(chat.send("For someone else"), "Does the person know")
    assert said(chat.send("not sure"), "Here is your report", "Who: For someone else")
    chat.send("2")
    assert said(chat.send("Back to my report"), "Here is your report")
    chat.send("send")
    report = chat.result.submit
    assert report is not None
    assert report.occurred_on == date(2026, 3, 17) and report.role == "someone_else"
    assert report.someone_else_knows == "not_sure"


def test_stop_ends_and_erases() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("STOP")
    assert chat.result.erase
    assert said(reply, "Nothing was sent", "deleted")
    assert chat.result.draft.answers == {}


def test_delete_erases_the_unfinished_report_now() -> None:
    chat = go_to(Chat(), "where")
    reply = chat.send("/delete")
    assert chat.result.erase
    assert said(reply, "Your report is deleted")
    assert chat.result.submit is None


def test_exit_clears_the_chat_where_it_can_and_says_how_where_it_cannot() -> None:
    telegram = go_to(Chat(channel="telegram", can_clear_chat=True), "why")
    telegram.send("exit")
    assert telegram.result.erase
    assert [r.clear_chat for r in telegram.result.replies] == [True]
    whatsapp = go_to(Chat(channel="whatsapp", can_clear_chat=False), "why")
    reply = whatsapp.send("Exit")
    assert whatsapp.result.erase and whatsapp.last.clear_chat
    assert said(reply, "delete this chat yourself")
    assert not said([r.text for r in telegram.result.replies], "yourself")


def test_unknown_replies_re_ask_with_a_hint_and_keep_the_answers() -> None:
    chat = go_to(Chat(), "again")
    answers = dict(chat.answers)
    first = chat.send("banana")
    assert said(first[:1], "Please pick one of the options")
    assert said(first[-1:], "Has this happened before?")
    assert chat.draft is not None and chat.draft.reasked == 1
    chat.send("🙂")
    third = chat.send("")
    assert said(third, "Type help")
    assert chat.answers == answers
    assert said(chat.send("2"), "person or people who did it")
    assert chat.draft is not None and chat.draft.reasked == 0
    assert chat.answers["again"] == "before"


def test_help_lists_the_words_and_asks_again() -> None:
    chat = go_to(Chat(), "where")
    reply = chat.send("/help")
    assert said(reply[:1], "back", "skip", "stop", "exit", "999", "delete", "status")
    assert said(reply[-1:], "Where did it happen?")


def test_status_query_is_passed_to_the_service_and_the_reply_re_asks() -> None:
    chat = go_to(Chat(), "why")
    before = chat.draft
    chat.send("status hc-7k3q 9xpd")
    assert chat.result.status_query == "HC-7K3Q-9XPD"
    assert chat.result.replies == []
    assert chat.draft is not None and before is not None and chat.draft.answers == before.answers
    missing = chat.status(None)
    assert missing[0] == "We could not find that reference."
    assert said(missing[1:], "Why do you think it happened?")
    found = chat.status(StatusInfo(REFERENCE, "in-progress", date(2026, 3, 1), ("We called the police.",)))
    assert said(found[:1], REFERENCE, "being looked at", "01/03/2026", "We called the police.")
    assert said(found[1:], "Why do you think it happened?")
    nothing = [r.text for r in REPORT_FLOW.status_reply(None, None, chat.ctx())]
    assert said(nothing, "could not find", "type start")


def test_status_with_something_that_is_not_a_reference_says_so() -> None:
    chat = go_to(Chat(), "why")
    reply = chat.send("status please")
    assert chat.result.status_query is None
    assert said(reply, "does not look like a reference", "Why do you think it happened?")


def test_coming_back_after_a_while_asks_continue_or_start_again() -> None:
    chat = go_to(Chat(), "where")
    chat.wait(31)
    assert said(chat.send("Mill Road"), "Welcome back", "carry on", "start again")
    assert "where" not in chat.answers
    assert said(chat.send("1"), "Where did it happen?")
    chat.send("Mill Road")
    assert chat.answers["where"] == {"text": "Mill Road"}
    chat.wait(120)
    chat.send("hello?")
    assert said(chat.send("Start again"), "Hello. This is")
    assert chat.answers == {}


def test_start_with_a_draft_offers_to_carry_on() -> None:
    chat = go_to(Chat(), "why")
    assert said(chat.send("/start"), "carry on", "start again")
    assert chat.keys() == ["continue", "restart"]
    assert said(chat.press("continue"), "Why do you think it happened?")


def test_a_draft_saved_as_json_mid_conversation_resumes_at_the_same_question() -> None:
    chat = go_to(Chat(), "story")
    chat.send("They spat at me.")
    saved = json.dumps(chat.draft.to_json() if chat.draft else {})
    again = Chat(draft=Draft.from_json(json.loads(saved)))
    assert said(again.send("help")[-1:], "Is there more you want to add?")
    again.send("done")
    go_to(again, "review")
    again.send("send")
    assert again.result.submit is not None
    assert again.result.submit.description == "They spat at me."
    assert again.result.submit.incident_types == ("verbal",)


def test_multi_select_buttons_toggle_and_done_finishes() -> None:
    chat = go_to(Chat(), "what")
    chat.press("verbal")
    assert (chat.last.multi, chat.last.update, chat.last.selected) == (True, True, ("verbal",))
    chat.press("online")
    chat.press("verbal")
    assert chat.last.selected == ("online",)
    chat.press("done")
    assert chat.answers["what"] == ["online"]
    assert chat.step == "why"
    chat.send("back")
    chat.send("physical attack, graffiti")
    assert chat.answers["what"] == ["physical", "written"]
    chat.send("back")
    chat.send("2 and 3")
    assert chat.answers["what"] == ["physical", "property"]


def test_done_with_nothing_picked_counts_as_skipped() -> None:
    chat = go_to(Chat(), "why")
    chat.press("done")
    assert chat.answers["why"] is None and chat.step == "when"


def test_dates_in_the_future_are_refused() -> None:
    chat = go_to(Chat(), "when")
    assert said(chat.send("25/12/2026"), "has not come yet")
    assert said(chat.send("3"), "What date was it?")
    assert said(chat.send("soon-ish"), "could not read that date")
    assert said(chat.send("1 April 2027"), "has not come yet")
    assert said(chat.send("3 days ago"), "What time of day")
    assert chat.answers["when_date"]["date"] == "2026-03-15"  # type: ignore[index]


def test_a_date_typed_straight_away_is_understood() -> None:
    chat = go_to(Chat(), "when")
    chat.send("12/3/26")
    assert chat.step == "when_time"
    go_to(chat, "review")
    chat.send("send")
    assert chat.result.submit is not None and chat.result.submit.occurred_on == date(2026, 3, 12)


def test_a_shared_location_is_kept_and_online_is_an_option() -> None:
    chat = go_to(Chat(), "where")
    chat.share(52.2053, 0.1218, "Market Square")
    assert chat.answers["where"] == {"latitude": 52.2053, "longitude": 0.1218, "text": "Market Square"}
    chat.send("back")
    chat.send("online")
    go_to(chat, "review")
    chat.send("send")
    assert chat.result.submit is not None and chat.result.submit.location_text == "online"


def test_photos_locations_stickers_and_edits_where_they_do_not_fit() -> None:
    chat = go_to(Chat(), "role")
    reply = chat.photo("file-9")  # kept for the evidence question, and the person is told so
    assert said(reply[:1], "I have kept this with your report", "When I ask about evidence")
    assert said(reply[-1:], "Which of these fits you best?")
    assert [item["ref"] for item in chat.answers["evidence"]] == ["file-9"]
    assert said(chat.share(51.5, -0.1), "can't use a location at this step")
    assert said(chat.deliver(_inbound(unsupported="sticker")), "only read text")
    assert said(chat.deliver(_inbound(text="It happened to me", edited=True)), "only read new messages")
    assert chat.step == "role" and "role" not in chat.answers
    chat.send("2")
    assert chat.answers["role"] == "witness"


def test_a_photo_sent_first_or_early_is_kept_for_the_evidence_question() -> None:
    chat = Chat()
    assert said(chat.photo("first-photo")[:1], "I have kept this with your report")
    chat = go_to(chat, "story")
    chat.photo("second-photo")
    go_to(chat, "evidence")
    chat.photo("third-photo")
    assert [item["ref"] for item in chat.answers["evidence"]] == [
        "first-photo",
        "second-photo",
        "third-photo",
    ]
    go_to(chat, "review")
    chat.send("send")
    assert chat.result.submit is not None
    assert [m.ref for m in chat.result.submit.evidence] == ["first-photo", "second-photo", "third-photo"]


def test_evidence_takes_several_photos_then_done() -> None:
    chat = go_to(Chat(), "evidence")
    assert said(chat.send("I have a video"), "send a photo or video here")
    chat.photo("a")
    chat.photo("b")
    chat.send("done")
    assert chat.answers["evidence"] == [
        {"ref": "a", "content_type": "image/jpeg"},
        {"ref": "b", "content_type": "image/jpeg"},
    ]


def test_someone_hurt_and_needing_help_now_is_told_to_call_999() -> None:
    chat = go_to(Chat(), "harm_hurt")
    assert said(chat.send("yes"), "need a doctor or an ambulance now")
    reply = chat.send("yes")
    assert said(reply[:1], "badly hurt, call 999")
    assert said(reply[-1:], "Was anything damaged?")
    go_to(chat, "review")
    chat.send("send")
    assert chat.result.submit is not None
    assert chat.result.submit.injuries == Harm(hurt="yes", needs_help_now="yes", property_damaged="no")


def test_without_partners_the_report_is_kept_as_a_record() -> None:
    chat = Chat().with_settings(partners=())
    go_to(chat, "contact")
    reply = chat.send("Here in this chat")
    assert said(reply, "reply here in this chat", "kept safe as a record by Townsville Council")
    chat.send("ok")
    assert said([chat.last.text], "Shared with: Nobody")
    chat.send("send")
    report = chat.result.submit
    assert report is not None
    assert report.share_with == () and report.anonymous is False
    assert report.contact == ContactDetails(in_chat=True, by="chat")


def test_consent_is_per_partner_and_nobody_cannot_be_picked_with_others() -> None:
    chat = go_to(Chat(), "consent")
    assert chat.keys() == ["police", "stophate", "none", "done", "skip"]
    chat.press("police")
    chat.press("stophate")
    assert chat.last.selected == ("police", "stophate")
    chat.press("none")
    assert chat.last.selected == ("none",)
    chat.press("stophate")
    assert chat.last.selected == ("stophate",)
    chat.press("done")
    chat.send("send")
    assert chat.result.submit is not None and chat.result.submit.share_with == ("stophate",)


def test_an_email_is_accepted_for_contact() -> None:
    chat = go_to(Chat(), "contact")
    chat.send("Email")
    chat.send("skip")
    chat.send("not an email@")
    assert chat.step == "contact_email"
    chat.send("Amira@Example.ORG")
    go_to(chat, "review")
    chat.send("send")
    report = chat.result.submit
    assert report is not None and report.contact is not None
    assert (report.contact.email, report.contact.phone, report.contact.name) == (
        "Amira@example.org",
        None,
        None,
    )


def test_a_number_from_another_country_is_accepted_and_a_local_one_is_explained() -> None:
    chat = go_to(Chat(), "contact")
    chat.send("2")
    chat.send("skip")
    reply = chat.send("601 234 567")  # a Polish mobile without its country code: not a UK number
    assert said(reply, "does not look like a phone number", "start with + and the country code")
    assert chat.step == "contact_phone"
    chat.send("+48 601 234 567")
    go_to(chat, "review")
    chat.send("send")
    report = chat.result.submit
    assert report is not None and report.contact is not None
    assert report.contact.phone == "+48601234567"  # E.164: what staff dial


def _inbound(**fields: object):  # type: ignore[no-untyped-def]
    from flows.types import Inbound

    return Inbound(**fields)  # type: ignore[arg-type]


def test_no_at_the_evidence_question_means_nothing_to_send() -> None:
    chat = go_to(Chat(), "evidence")
    assert said(chat.send("no"), "support service")
    assert chat.answers["evidence"] is None
    chat = go_to(Chat(), "evidence")
    assert said(chat.send("banana"), "Please send a photo or video here")
    assert chat.step == "evidence"


def test_a_typed_date_is_shown_once_in_the_review() -> None:
    chat = go_to(Chat(), "when")
    chat.send("02/03/2026")
    chat.send("afternoon")
    review = go_to(chat, "review").last.text
    assert "When: 02/03/2026, Afternoon" in review
