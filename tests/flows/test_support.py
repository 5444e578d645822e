"""Support by strand, contact that keeps its promises, and text routes for deaf people: transcripts of the
personas in issue 15, on the built-in support list (FACTS.md)."""

from __future__ import annotations

from flows.report import REPORT_FLOW
from tests.flows.chat import Chat, go_to, said

HIJAB = "A man pulled my hijab on the bus and called me a terrorist."


def test_the_muslim_woman_is_shown_tell_mama_and_victim_support_and_chooses_tell_mama() -> None:
    chat = go_to(Chat(), "role")
    chat.send("It happened to me")
    chat.send(HIJAB)
    chat.send("done")
    chat.send("physical attack and verbal abuse")
    assert said(chat.send("because I'm Muslim"), "When did it happen?")
    assert chat.answers["why"] == ["religion"]
    go_to(chat, "support")
    asked = chat.send("yes please")
    assert said(asked, "Which service would you like to get in touch with you?")
    assert chat.labels()[0] == "Tell MAMA"  # the one that fits her report first
    assert "Victim Support" not in chat.labels()  # it does not take referrals: listed, never chosen
    assert said(chat.send("tell mama"), "How would you like us to contact you?")
    chat.send("message me here")
    chat.send("done")  # consent: nobody else
    review = chat.last.text
    assert "Support: Yes, Tell MAMA" in review and "Shared with: Tell MAMA" in review
    done = chat.send("send")
    report = chat.result.submit
    assert report is not None and report.share_with == ("tellmama",)
    assert report.motivations == ("religion",) and report.contact is not None and report.contact.in_chat
    assert said(done, "Our staff will pass your report to Tell MAMA, so they can get in touch with you.")
    services = next(text for text in done if text.startswith("Support you can contact"))
    assert services.splitlines()[1].startswith("Tell MAMA, for anti-Muslim hate: 0800 456 1226")
    assert "Victim Support" in services and "08 08 16 89 111" in services
    assert "CST" not in services and "Galop" not in services  # not for her: antisemitism, anti-LGBT+
    assert len(services.splitlines()) == 4  # at most three services


def test_the_muslim_one_and_galop_please_choose_those_services() -> None:
    for typed, chosen in (("the muslim one", "tellmama"), ("galop please", "galop"), ("none", None)):
        chat = go_to(Chat(), "support")
        chat.send("yes")
        chat.send(typed)
        assert chat.step == "contact", typed
        go_to(chat, "review")
        chat.send("send")
        report = chat.result.submit
        assert report is not None
        assert ("galop" in report.share_with, "tellmama" in report.share_with) == (
            chosen == "galop",
            chosen == "tellmama",
        ), typed


def test_the_mother_reporting_for_her_gay_son_sees_galop() -> None:
    chat = go_to(Chat(), "role")
    assert said(chat.send("I'm reporting for my son"), "Does the person know")
    chat.send("yes he asked me to")
    chat.send("Boys at his college shouted that he is gay and pushed him.")
    chat.send("done")
    chat.send("verbal and physical")
    chat.send("because he is gay")
    assert chat.answers["why"] == ["sexual_orientation"]
    go_to(chat, "review")
    done = chat.send("send")
    services = next(text for text in done if text.startswith("Support you can contact"))
    lines = services.splitlines()[1:]
    assert lines[0].startswith("Galop, for anti-LGBT+ hate: hate crime line 020 7704 2040")
    assert [line.split(",")[0] for line in lines] == ["Galop", "Stop Hate UK", "Victim Support"]


def test_an_organisation_is_asked_its_name_and_not_shown_victim_support() -> None:
    chat = go_to(Chat(), "role")
    assert said(chat.send("I'm on the committee of our mosque"), "What is the name of the organisation?")
    assert said(chat.send("Townsville Islamic Centre"), "In your own words")
    chat.send("Someone sprayed graffiti about Muslims on our mosque wall.")
    chat.send("done")
    go_to(chat, "review")
    assert "Who: For an organisation (Townsville Islamic Centre)" in chat.last.text
    done = chat.send("send")
    report = chat.result.submit
    assert report is not None and report.organisation == "Townsville Islamic Centre"
    assert not said(done, "Victim Support")  # for victims of crime, not organisations


def test_the_deaf_user_gets_the_text_routes_at_any_question_and_no_phone_call_is_offered() -> None:
    for step in ("welcome", "safety", "when", "contact"):
        chat = go_to(Chat(), step)
        question = chat.last.text
        reply = chat.send("I am deaf, I can't phone anyone")
        assert said(reply[:1], "18001 101", "18000", "register to 999", "999 BSL", "999bsl.co.uk"), step
        assert reply[-1] == question or step == "contact", (step, reply)
        assert chat.step == step and chat.answers.get("no_calls") is True
        assert not chat.answers.get("story"), step  # not taken for part of what happened
    chat = go_to(Chat(), "what")
    for typed in ("deaf", "cant hear", "can't speak", "I use BSL", "cant phone anyone"):
        assert said(chat.send(typed)[:1], "18001 101"), typed
        assert chat.step == "what"
    asked = go_to(chat, "contact").last
    assert said([asked.text], "phone calls are hard", "we will not call you")
    assert "Phone call" not in chat.labels() and "Text message only" in chat.labels()
    chat.send("text me")
    chat.send("Sam")
    chat.send("07700 900123")
    go_to(chat, "review")
    done = chat.send("send")
    contact = chat.result.submit.contact if chat.result.submit else None
    assert contact is not None and contact.by == "text" and contact.no_calls is True
    assert said(done, "18001 101")  # wherever 101 is offered


def test_because_i_am_deaf_at_why_is_the_disability_strand_and_gets_the_text_routes() -> None:
    chat = go_to(Chat(), "why")
    reply = chat.send("because I'm deaf")
    assert said(reply[:1], "18001 101")
    assert chat.answers["why"] == ["disability"] and chat.step == "when"


def test_a_sentence_that_mentions_deafness_is_answered_and_still_read() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("He mocked me because I am deaf and pushed me off the bus.")
    assert said(reply, "18001 101", "Is there more")
    assert chat.answers["story"] == ["He mocked me because I am deaf and pushed me off the bus."]


def test_they_said_he_should_kill_himself_gives_samaritans_and_childline() -> None:
    chat = go_to(Chat(), "story")
    reply = chat.send("They said he should kill himself.")
    assert said(reply, "Samaritans", "116 123", "Childline", "0800 1111")
    assert said(reply[-1:], "Is there more")  # and the conversation goes on


def test_skip_at_contact_is_dont_contact_me_with_the_honest_note() -> None:
    chat = go_to(Chat(), "contact")
    reply = chat.send("skip")
    assert said(reply, "we will not contact you", "can still see your account", "life is at risk")
    assert chat.answers["contact"] == "anonymous"
    go_to(chat, "review")
    assert "Contact: Don't contact me" in chat.last.text
    chat.send("send")
    assert chat.result.submit is not None and chat.result.submit.anonymous is True


def test_choosing_phone_then_giving_no_number_asks_the_contact_question_again() -> None:
    chat = go_to(Chat(), "contact")
    chat.send("phone me after 6")
    assert chat.answers["contact_times"] == "after 6"
    chat.send("skip")  # name
    reply = chat.send("skip")  # number
    assert said(reply, "can't reach you that way without a number or an email")
    assert chat.step == "contact"
    chat.send("email me")
    chat.send("skip")
    assert said(chat.send("skip"), "without a number or an email")
    chat.send("email me")
    chat.send("skip")
    chat.send("sam@example.com")
    assert chat.step == "contact_notes"  # "after 6" was said already: not asked again
    go_to(chat, "review")
    chat.send("send")
    report = chat.result.submit
    assert report is not None and report.contact is not None and not report.anonymous
    assert (report.contact.by, report.contact.email, report.contact.safe_times) == (
        "email",
        "sam@example.com",
        "after 6",
    )


def test_phone_asks_whether_a_message_is_safe_and_text_too() -> None:
    for way in ("Phone call", "Text message only"):
        chat = go_to(Chat(), "contact")
        chat.send(way)
        chat.send("Amira")
        chat.send("07700 900123")
        assert said(chat.send("weekday evenings"), "safe for us to leave a message"), way
        chat.send("yes")
        assert chat.step == "contact_notes"
        go_to(chat, "review")
        chat.send("send")
        contact = chat.result.submit.contact if chat.result.submit else None
        assert (
            contact is not None
            and contact.leave_message == "yes"
            and contact.safe_times == "weekday evenings"
        )


def test_after_sending_it_says_what_happens_next_not_that_it_was_sent() -> None:
    chat = go_to(Chat(), "consent")
    chat.press("police")
    chat.press("done")
    done = chat.send("send")
    assert not said(done, "has been sent")
    assert said(
        done,
        "We have your report",
        "kept safe by Townsville Council",
        "Our staff will pass it only to the people you picked",
    )
    assert said(done, "What happens next: A member of staff will read your report within 3 working days.")
    assert said(done, "type status HC-7K3Q-9XPD")


def test_the_flow_declares_every_new_question() -> None:
    for step in ("org_name", "support_choice", "contact_phone", "contact_email", "contact_message"):
        assert step in REPORT_FLOW.steps


def test_with_no_partners_the_record_only_words_name_the_service_she_picked() -> None:
    chat = Chat().with_settings(partners=())
    go_to(chat, "support")
    chat.send("yes please")
    chat.send("tell mama")
    said_then = chat.send("dont contact me")
    assert chat.step == "record_only"
    assert said(said_then, "We will only pass it to Tell MAMA, the support service you picked.")
    assert not said(said_then, "We will not send it to anyone else")
    chat.send("ok")
    assert "Shared with: Tell MAMA" in chat.last.text


def test_with_no_partners_and_no_service_the_record_is_sent_to_nobody() -> None:
    chat = Chat().with_settings(partners=())
    go_to(chat, "contact")
    assert said(chat.send("dont contact me"), "We will not send it to anyone else.")
