"""The fake Bot API (tests/fakes/telegram_api.py) served over HTTP on loopback, for benchmarks and the
crash test: `python bench/fake_telegram.py PORT`. It keeps only counts, so memory stays flat."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.telegram_api import FakeBotAPI


def make_app() -> Starlette:
    api = FakeBotAPI()
    counts: dict[str, int] = {}

    async def method(request: Request) -> Response:
        body = await request.body()
        forwarded = httpx.Request(
            request.method, str(request.url), headers=list(request.headers.items()), content=body
        )
        response = await api.handle(forwarded)
        name = request.url.path.rsplit("/", 1)[-1]
        counts[name] = counts.get(name, 0) + 1
        # Keep memory flat over a long run: the benchmark needs answers, not a record of every call.
        api.calls.clear()
        api.chats.clear()
        return Response(response.content, status_code=response.status_code, media_type="application/json")

    async def stats(request: Request) -> Response:
        return JSONResponse(counts)

    return Starlette(routes=[Route("/stats", stats), Route("/{path:path}", method, methods=["POST", "GET"])])


if __name__ == "__main__":
    uvicorn.run(make_app(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
