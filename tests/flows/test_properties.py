"""Random conversations: nothing crashes, every turn ends with something the person can answer, and no answer
is lost unless the person stopped, erased, started again, or answered that same question again."""

from __future__ import annotations

import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.catalog import CATALOGS
from flows.engine import START
from flows.report import REPORT_FLOW
from flows.types import Draft, Inbound, Location, Media
from tests.conftest import examples
from tests.flows.chat import Chat

LABELS = sorted({text for key, text in CATALOGS["en"].items() if key.startswith("option.")})
ALL_KEYS = sorted({key.removeprefix("option.") for key in CATALOGS["en"] if key.startswith("option.")})
COMMANDS = [
    "help", "/help", "back", "BACK", "skip", "/skip", "stop", "exit", "999", "emergency", "/delete", "start",
    "/start", "status HC-7K3Q-9XPD", "status hc-abcd-efgh", "status nonsense", "status",
]  # fmt: skip
TYPED = [
    "1", "2", "3", "4", "9", "15", "0", "1 3", "2, 4", "1 and 3", "yes", "no", "not sure", "done", "ok",
    "12/03/2025", "31/12/2099", "last Tuesday", "3 days ago", "07700 900123", "name@example.com",
    "he's outside my door", "they have a knife", "🙂🙂", "", "   ", "x" * 5000, "abuse, online",
]  # fmt: skip

ACCOUNT = "story"

texts = st.one_of(
    st.sampled_from(COMMANDS),
    st.sampled_from(TYPED),
    st.sampled_from(LABELS),
    st.text(max_size=40),
)
others = st.one_of(
    st.builds(lambda key: Inbound(option=key), st.sampled_from([*ALL_KEYS, "stale", "x" * 64])),
    st.builds(
        lambda lat, lon: Inbound(location=Location(lat, lon, "somewhere")),
        st.floats(-90, 90),
        st.floats(-180, 180),
    ),
    st.builds(
        lambda ref, caption: Inbound(text=caption, media=(Media(ref=ref),)),
        st.text(min_size=1, max_size=8),
        st.sampled_from(["", "look", "help me"]),
    ),
    st.just(Inbound(unsupported="sticker")),
    st.just(Inbound(text="edited words", edited=True)),
)


def check_turn(chat: Chat, before: Draft | None, inbound: Inbound) -> None:
    result = chat.result
    for reply in result.replies:
        assert reply.text.strip() and len(reply.text) <= 4096
        for option in reply.options:
            assert option.label and option.key.isascii() and len(option.key.encode()) <= 40
    if result.erase or result.submit is not None:
        assert result.replies
        return
    draft = result.draft
    assert draft.step in REPORT_FLOW.states
    json.dumps(draft.to_json())
    if result.status_query is not None:
        replies = REPORT_FLOW.status_reply(draft, None, chat.ctx())
        assert replies[0].text == "We could not find that reference."
        last = replies[-1]
        assert REPORT_FLOW.is_question(last) or (draft.step == START and last.step == "status")
    else:
        assert result.replies, "every message gets an answer"
        last = result.replies[-1]
        assert REPORT_FLOW.is_question(last), last
        assert last.step == draft.step
        if REPORT_FLOW.steps[draft.step].kind == "multi":
            assert set(last.selected) <= {option.key for option in last.options}

    # no answer is lost: only the question being answered may change, or the person chose to start again
    old = before.answers if before is not None else {}
    if before is not None and before.step == "resume" and draft.answers == {} and draft.step == "welcome":
        return
    # The person's account ("story") also grows anywhere: words that answer nothing join it, at the end;
    # so does the evidence: a photo or file sent at any question is kept for the evidence question.
    for key, value in old.items():
        assert key in draft.answers, f"answer {key} lost on {inbound!r}"
        if draft.answers[key] != value:
            grown = draft.answers[key]
            if (
                key in GROW_ANYWHERE
                and isinstance(grown, list)
                and grown[: len(value or [])] == (value or [])
            ):
                continue
            assert before is not None and key == before.step, f"{key} changed while at {before.step}"
    for key in draft.answers.keys() - old.keys():
        assert key in GROW_ANYWHERE or (before is not None and key == before.step)


GROW_ANYWHERE = (ACCOUNT, "evidence")


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_conversations_never_crash_and_always_ask_something(data: st.DataObject) -> None:
    chat = Chat()
    for _ in range(data.draw(st.integers(1, 40), label="turns")):
        if data.draw(st.integers(0, 12), label="wait") == 0:
            chat.now += timedelta(minutes=45)
        choice = data.draw(st.integers(0, 9), label="kind")
        if choice < 3 and chat.replies and chat.last.options:
            inbound = Inbound(option=data.draw(st.sampled_from([o.key for o in chat.last.options])))
        elif choice < 6 and chat.replies and chat.last.options:
            inbound = Inbound(text=data.draw(st.sampled_from([o.label for o in chat.last.options])))
        elif choice < 8:
            inbound = Inbound(text=data.draw(texts))
        else:
            inbound = data.draw(others)
        before = Draft.from_json(json.loads(json.dumps(chat.draft.to_json()))) if chat.draft else None
        chat.deliver(inbound)
        check_turn(chat, before, inbound)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.sampled_from(["1", "2", "yes", "no", "done", "skip", "back", "x"]), max_size=60))
def test_answering_mostly_sensibly_reaches_a_valid_report(replies: list[str]) -> None:
    chat = Chat()
    chat.send("hi")
    for text in [*replies, *["skip"] * 50]:
        if chat.draft is None:
            break
        if chat.step == "review":
            chat.send("Send report")
            break
        chat.send("Continue" if chat.step in ("welcome", "record_only", "resume") else text)
    report = chat.result.submit
    if report is not None:
        assert report.role in (None, "victim", "witness", "someone_else", "organisation")
        assert report.anonymous == (report.contact is None)
        # The partners, and a support service that takes referrals when the person chose it for support.
        referred = {s.id for s in chat.settings.support if s.referrals}
        assert set(report.share_with) <= {"police", "stophate"} | referred
