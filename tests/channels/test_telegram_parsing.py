"""The webhook reads a plain text message straight from the update's JSON (bot.channels.telegram.parse's fast path);
everything else goes through PTB's `Update.de_json`. Whatever the fast path accepts, it must turn into
exactly the envelope PTB's path makes; whatever it declines goes to PTB, as before."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telegram import Update

from bot.channels.telegram.parse import button_press, message_envelope, plain_text_envelope, press_from_query
from tests.conftest import examples


def plain(text: str = "Someone shouted at me", chat_id: int = 424242) -> dict[str, Any]:
    person = {"id": chat_id, "is_bot": False, "first_name": "Sam"}
    return {
        "update_id": 1001,
        "message": {
            "message_id": 7,
            "date": 1_790_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Sam"},
            "from": person,
            "text": text,
        },
    }


def through_ptb(data: dict[str, Any]) -> object:
    try:
        return message_envelope(Update.de_json(copy.deepcopy(data), None))
    except Exception as exc:  # the webhook acknowledges and drops what PTB cannot read
        return type(exc)


def test_a_plain_text_message_takes_the_fast_path_and_gives_ptbs_envelope() -> None:
    for text in ("Someone shouted at me", "/start", "/start ref-payload", "2", "🙂 ça va", "x" * 4096):
        data = plain(text)
        fast = plain_text_envelope(data)
        assert fast is not None, text
        assert fast == through_ptb(data)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
VALUES = st.one_of(
    SCALARS, st.lists(SCALARS, max_size=2), st.dictionaries(st.text(max_size=4), SCALARS, max_size=2)
)
PATHS = st.sampled_from(
    [
        (),
        ("message",),
        ("message", "chat"),
        ("message", "from"),
    ]
)
KEYS = st.sampled_from(
    [
        "update_id",
        "message",
        "message_id",
        "date",
        "chat",
        "from",
        "text",
        "id",
        "type",
        "is_bot",
        "first_name",
        "photo",
        "caption",
        "location",
        "entities",
        "edited_message",
        "username",
        "is_forum",
    ]
)


@st.composite
def mutated_updates(draw: st.DrawFn) -> dict[str, Any]:
    data = plain(draw(st.text(max_size=30)), draw(st.integers(min_value=-(2**60), max_value=2**60)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        target: Any = data
        for key in draw(PATHS):
            if not isinstance(target, dict) or not isinstance(target.get(key), dict):
                break
            target = target[key]
        key = draw(KEYS)
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(VALUES)
    message = data.get("message")
    if isinstance(message, dict) and isinstance(message.get("chat"), dict) and draw(st.booleans()):
        message["chat"]["type"] = draw(st.sampled_from(["private", "group", "channel", "x"]))
    return data


@settings(max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_updates())
def test_whatever_the_fast_path_accepts_ptb_reads_the_same(data: dict[str, Any]) -> None:
    fast = plain_text_envelope(data)
    if fast is not None:
        assert through_ptb(data) == fast


FIELDS = st.sampled_from(
    [
        ("update_id",),
        ("message", "message_id"),
        ("message", "date"),
        ("message", "text"),
        ("message", "chat", "id"),
        ("message", "chat", "type"),
        ("message", "from", "id"),
        ("message", "from", "is_bot"),
        ("message", "from", "first_name"),
    ]
)


@settings(max_examples=examples(600), deadline=None)
@given(FIELDS, VALUES)
def test_one_field_of_any_value_is_read_as_ptb_reads_it_or_left_to_ptb(
    path: tuple[str, ...], value: Any
) -> None:
    data = plain()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    fast = plain_text_envelope(data)
    if fast is not None:
        assert through_ptb(data) == fast


# -- button presses: the same rule -----------------------------------------------------------------


def press(data: str = "safety:no", chat_id: int = 424242) -> dict[str, Any]:
    """A press as Telegram posts it: the query and the bot's question with its keyboard."""
    keyboard = [[{"text": "Yes", "callback_data": "safety:yes"}], [{"text": "No", "callback_data": data}]]
    return {
        "update_id": 1002,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "from": {"id": chat_id, "is_bot": False, "first_name": "Sam", "language_code": "en"},
            "message": {
                "message_id": 8,
                "from": {"id": 123456, "is_bot": True, "first_name": "Report Hate", "username": "rh_bot"},
                "chat": {"id": chat_id, "type": "private", "first_name": "Sam"},
                "date": 1_790_000_000,
                "text": "Is it happening now?",
                "reply_markup": {"inline_keyboard": keyboard},
            },
            "chat_instance": "-5580134",
            "data": data,
        },
    }


def press_through_ptb(data: dict[str, Any]) -> object:
    try:
        update = Update.de_json(copy.deepcopy(data), None)
        assert update.callback_query is not None
        return press_from_query(update.update_id, update.callback_query)
    except Exception as exc:  # the webhook acknowledges and drops what PTB cannot read
        return type(exc)


def test_a_press_takes_the_fast_path_and_gives_ptbs_press() -> None:
    for data in ("safety:no", "welcome:continue", "what:verbal", "no-step-key", "a:b:c", "🙂:x"):
        update = press(data)
        fast = button_press(update)
        assert fast is not None, data
        assert fast == press_through_ptb(update)
    fast = button_press(press("what:verbal"))
    assert fast is not None and fast.env is not None
    assert (fast.query_id, fast.env.inbound.option, fast.env.button_step) == (
        "4382bfdwdsb323b2d9",
        "verbal",
        "what",
    )
    assert (fast.env.chat_id, fast.env.button_ref, fast.env.delivery_id) == ("424242", "8", "1002")


def test_presses_of_other_shapes_are_left_to_ptb() -> None:
    def changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
        update = press()
        target: Any = update
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return update

    left = [
        changed(("callback_query", "message", "date"), 0),  # a message Telegram no longer shows
        changed(("callback_query", "message", "chat", "type"), "group"),
        changed(("callback_query", "data"), ""),
        changed(("callback_query", "message", "reply_markup"), {"inline_keyboard": [[{"text": 1}]]}),
        changed(("callback_query", "message", "entities"), [{"type": "bold", "offset": 0, "length": 2}]),
        changed(("callback_query", "game_short_name"), "g"),
    ]
    for update in left:
        assert button_press(update) is None


@st.composite
def mutated_presses(draw: st.DrawFn) -> dict[str, Any]:
    data = press(draw(st.text(max_size=20)), draw(st.integers(min_value=-(2**60), max_value=2**60)))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        target: Any = data
        for key in draw(PRESS_PATHS):
            if not isinstance(target, dict) or not isinstance(target.get(key), dict):
                break
            target = target[key]
        key = draw(PRESS_KEYS)
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(VALUES | KEYBOARDS)
    return data


PRESS_PATHS = st.sampled_from(
    [
        (),
        ("callback_query",),
        ("callback_query", "from"),
        ("callback_query", "message"),
        ("callback_query", "message", "chat"),
        ("callback_query", "message", "from"),
        ("callback_query", "message", "reply_markup"),
    ]
)
PRESS_KEYS = st.sampled_from(
    [
        "update_id",
        "callback_query",
        "id",
        "from",
        "message",
        "chat_instance",
        "data",
        "message_id",
        "date",
        "edit_date",
        "chat",
        "text",
        "reply_markup",
        "inline_keyboard",
        "type",
        "is_bot",
        "first_name",
        "entities",
        "inline_message_id",
    ]
)
BUTTONS = st.dictionaries(st.sampled_from(["text", "callback_data", "url", "pay"]), SCALARS, max_size=3)
KEYBOARDS = st.fixed_dictionaries({"inline_keyboard": st.lists(st.lists(BUTTONS, max_size=2), max_size=2)})


@settings(max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_presses())
def test_whatever_the_press_fast_path_accepts_ptb_reads_the_same(data: dict[str, Any]) -> None:
    fast = button_press(data)
    if fast is not None:
        assert press_through_ptb(data) == fast


PRESS_FIELDS = st.sampled_from(
    [
        ("update_id",),
        ("callback_query", "id"),
        ("callback_query", "data"),
        ("callback_query", "chat_instance"),
        ("callback_query", "from", "id"),
        ("callback_query", "from", "first_name"),
        ("callback_query", "message", "message_id"),
        ("callback_query", "message", "date"),
        ("callback_query", "message", "edit_date"),
        ("callback_query", "message", "text"),
        ("callback_query", "message", "chat", "id"),
        ("callback_query", "message", "chat", "type"),
        ("callback_query", "message", "from", "is_bot"),
        ("callback_query", "message", "reply_markup", "inline_keyboard"),
    ]
)


@settings(max_examples=examples(600), deadline=None)
@given(PRESS_FIELDS, VALUES | KEYBOARDS)
def test_one_press_field_of_any_value_is_read_as_ptb_reads_it_or_left_to_ptb(
    path: tuple[str, ...], value: Any
) -> None:
    data = press()
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    fast = button_press(data)
    if fast is not None:
        assert press_through_ptb(data) == fast


def test_the_persons_app_language_travels_in_the_envelope_on_both_paths() -> None:
    for code, said in (("pl", ("pl",)), ("en-GB", ("en-GB",)), ("", ()), (None, ())):
        data = plain()
        if code is not None:
            data["message"]["from"]["language_code"] = code
        fast = plain_text_envelope(data)
        assert fast is not None and fast.languages == said
        assert fast == through_ptb(data)
