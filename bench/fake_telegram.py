"""The fake Bot API (tests/fakes/telegram_api.py) served over HTTP on loopback, for benchmarks and the
crash test: `python bench/fake_telegram.py PORT`. It keeps only counts, so memory stays flat.

It also counts duplicates: a message accepted for a chat that is the same (text and buttons) as the
last one accepted for that chat. The outbox sends a chat's messages in order, one at a time, so a reply
sent again after a crash always directly follows its first copy; the bot never asks the same thing
twice in a row in the scripted reports the benchmarks make. `GET /stats` returns the counts."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.telegram_api import FakeBotAPI

# Told of each call the fake API answered: the method's name, the status, and the call's parameters when
# the API recorded it (None otherwise).
Seen = Callable[[str, int, dict[str, Any] | None], None]


def api_app(seen: Seen, *routes: Route) -> Starlette:
    """The fake Bot API behind Starlette (any method, POST or GET), with `routes` of the caller's own.
    It keeps no record of the calls (memory stays flat over a long run): `seen` hears of each."""
    api = FakeBotAPI()

    async def method(request: Request) -> Response:
        body = await request.body()
        forwarded = httpx.Request(
            request.method, str(request.url), headers=list(request.headers.items()), content=body
        )
        response = await api.handle(forwarded)
        seen(
            request.url.path.rsplit("/", 1)[-1],
            response.status_code,
            api.calls[-1].params if api.calls else None,
        )
        api.calls.clear()
        api.chats.clear()
        return Response(response.content, status_code=response.status_code, media_type="application/json")

    return Starlette(routes=[*routes, Route("/{path:path}", method, methods=["POST", "GET"])])


def make_app() -> Starlette:
    counts: dict[str, int] = {}
    last: dict[str, bytes] = {}  # chat -> digest of the last message accepted for it
    worst: dict[str, int] = {}  # chat -> duplicates

    def seen(name: str, status: int, params: dict[str, Any] | None) -> None:
        counts[name] = counts.get(name, 0) + 1
        if name == "sendMessage" and status == 200 and params is not None:
            chat = str(params.get("chat_id"))
            digest = hashlib.blake2b(
                repr((params.get("text"), params.get("reply_markup"))).encode(), digest_size=8
            ).digest()
            if last.get(chat) == digest:
                counts["duplicates"] = counts.get("duplicates", 0) + 1
                worst[chat] = worst.get(chat, 0) + 1
                counts["most_in_one_chat"] = max(counts.get("most_in_one_chat", 0), worst[chat])
            last[chat] = digest

    async def stats(request: Request) -> Response:
        return JSONResponse(counts)

    return api_app(seen, Route("/stats", stats))


if __name__ == "__main__":
    uvicorn.run(make_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
