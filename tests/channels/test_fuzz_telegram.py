"""Hostile and broken input on the Telegram webhook (Hypothesis, bounded for `make test`; docs/fuzzing.md
has the long run): random JSON, random bytes, invalid UTF-8, huge bodies, missing fields, wrong types,
unicode edge cases and control characters.

Never a 500. Without the secret: 403 and not one row stored. With it: 200 (or 413 for a body over the
limit), and a person's private text message, whatever it says, always gets an answer in the outbox.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bench.harness import text_update
from storage.models import OutboxMessage
from tests.channels.telegram_app import SECRET, WebApp
from tests.conftest import examples

EXAMPLES = int(os.environ.get("REPORTBOT_FUZZ_EXAMPLES", examples(60)))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Running:
    """The app on an event loop of its own, kept for every example of the module."""

    def __init__(self, folder: Path) -> None:
        self.runner = asyncio.Runner()
        self.web = WebApp(folder)
        self.runner.run(self.web.__aenter__())

    def run(self, coro: Any) -> Any:
        return self.runner.run(coro)

    def close(self) -> None:
        self.runner.run(self.web.__aexit__())
        self.runner.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running(tmp_path_factory.mktemp("fuzz"))
    yield running
    running.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
# Text with the awkward parts of unicode: controls, surrogates escaped in JSON, RTL marks, emoji, NUL.
nasty_text = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(["\x00", "\u202e", "\ufeff", "\u200b", "\U0001f600", "\r", "\n"])
    | st.characters(categories=["Cs"]),  # lone surrogates: JSON can carry them as "\ud800"
    max_size=300,
)
update_ids = itertools.count(10_000_000)
chats = itertools.count(900_000_000)


def field_soup() -> st.SearchStrategy[dict[str, Any]]:
    """Update-shaped JSON with fields missing, of the wrong type, or full of junk."""
    message = st.fixed_dictionaries(
        {},
        optional={
            "message_id": st.integers() | st.text(max_size=5) | st.none(),
            "date": st.integers() | st.text(max_size=5),
            "chat": st.fixed_dictionaries(
                {},
                optional={
                    "id": st.integers() | st.text(max_size=5),
                    "type": st.sampled_from(["private", "group", "x", ""]) | st.integers(),
                },
            )
            | json_values,
            "text": nasty_text | st.integers() | st.lists(st.integers(), max_size=3),
            "photo": json_values,
            "location": st.fixed_dictionaries({"latitude": st.floats(), "longitude": st.floats()})
            | json_values,
        },
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "update_id": st.integers() | st.text(max_size=8) | st.none(),
            "message": message | json_values,
            "edited_message": message,
            "callback_query": st.dictionaries(
                st.sampled_from(["id", "data", "from", "message"]), json_values
            ),
        },
    )


bodies = (
    st.binary(max_size=400)
    | json_values.map(lambda v: json.dumps(v).encode())
    | field_soup().map(lambda v: json.dumps(v, allow_nan=True).encode())
    | st.binary(min_size=1, max_size=50).map(lambda b: b'{"update_id": 1, "message": {"text": "' + b + b'"}}')
)


@FUZZ
@given(body=bodies, secret=st.none() | st.text(max_size=40) | st.just(SECRET + "x") | st.just(SECRET[:-1]))
def test_without_the_secret_nothing_is_stored_and_the_answer_is_403(
    app: Running, body: bytes, secret: str | None
) -> None:
    app.run(app.web.settle())  # nothing of earlier examples still being delivered
    before = app.run(app.web.rows())
    try:
        response = app.run(app.web.post(body, secret=secret))
    except UnicodeEncodeError:  # a header value httpx itself cannot send; Telegram could not either
        return
    assert response.status_code == 403
    assert app.run(app.web.rows()) == before


@FUZZ
@given(body=bodies)
def test_with_the_secret_any_body_is_answered_without_a_500(app: Running, body: bytes) -> None:
    response = app.run(app.web.post(body))
    assert response.status_code == 200, response.status_code


@FUZZ
@given(text=nasty_text)
def test_a_private_message_saying_anything_gets_a_reply(app: Running, text: str) -> None:
    chat = next(chats)
    update = text_update(next(update_ids), chat, 1, text)
    response = app.run(app.web.post(json.dumps(update)))
    assert response.status_code == 200

    async def replies() -> int:
        async with app.web.db.transaction() as s:
            return int((await s.execute(select(func.count()).select_from(OutboxMessage))).scalar() or 0)

    before = app.run(replies())
    # The next message in the same chat is answered too: whatever came first broke nothing.
    again = text_update(next(update_ids), chat, 2, "help")
    assert app.run(app.web.post(json.dumps(again))).status_code == 200
    assert app.run(replies()) > before > 0


def test_huge_bodies_are_refused_with_413_before_they_are_read(app: Running) -> None:
    limit = app.web.config.server.max_body_bytes
    app.run(app.web.settle())  # earlier tests' replies delivered (each send keeps its id for quick exit)
    before = app.run(app.web.rows())
    huge = json.dumps(text_update(next(update_ids), next(chats), 1, "x" * (limit + 10)))
    assert app.run(app.web.post(huge)).status_code == 413
    assert app.run(app.web.post(b"[" * (limit + 1))).status_code == 413
    assert app.run(app.web.rows()) == before
    # Deeply nested JSON under the limit is not a crash either.
    assert app.run(app.web.post(b"[" * 100_000 + b"]" * 100_000)).status_code == 200
