"""The web server: one Starlette app with a route per configured channel and a health check.

Webhooks stay thin: authenticate, parse, hand the message to the service's one step, answer. Channel
modules contribute their routes through `ChannelRoutes`; only configured channels are mounted.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.config import Config
from bot.service import ReportService
from storage.db import Database

log = logging.getLogger("reportbot.web")


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing more than `limit` bytes without reading it all into memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


@dataclass
class ChannelRoutes:
    """What a channel adds to the app: routes, and tasks to run while the app is up (outbox delivery)."""

    routes: Sequence[BaseRoute]
    startup: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)
    shutdown: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)


def create_app(
    config: Config,
    service: ReportService,
    channels: Sequence[ChannelRoutes] = (),
    *,
    create_schema: bool = False,
) -> Starlette:
    """The app for `reportbot serve`, with the given channels mounted."""
    db: Database = service.db

    async def healthz(request: Request) -> Response:
        if await db.ping():
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if create_schema:  # tests and local runs: bring the schema to head with the shipped migrations
            from storage.schema import upgrade

            await upgrade(db)
        for start in (fn for ch in channels for fn in ch.startup):
            await start()
        # What exists now (modules, the flow, the tables, the clients) lives as long as the process:
        # move it out of the collector's sight, so that a full collection under load walks only what
        # requests made (it took 60-90 ms with everything in it, measured under bench/webhook.py).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            for stop in (fn for ch in channels for fn in ch.shutdown):
                await stop()
            await db.dispose()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    for channel in channels:
        routes.extend(channel.routes)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = service
    app.state.config = config
    return app
