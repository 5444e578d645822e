"""The web server (`reportbot serve`): one Starlette app with the routes of every configured channel and
a health check.

Webhooks stay thin: authenticate, parse, hand the message to the service's one step, answer. Each
channel in the registry (bot/channels/__init__.py) contributes its routes and background tasks through
`ChannelRoutes`; only configured channels are mounted. `app_factory` builds the same app in each of
uvicorn's worker processes (`server.workers` > 1).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import channels
from bot.channels.base import ChannelRoutes
from bot.config import Config, load_config
from bot.logs import install
from bot.service import ReportService
from storage.db import Database

log = logging.getLogger("reportbot.web")


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


def build_app(config: Config) -> Starlette:
    """The Starlette app with every configured channel mounted."""
    db = Database(config.database_url)
    service = ReportService(config, db)
    mounted = [channel.routes(config, service) for channel in channels.enabled(config)]
    return create_app(config, service, [routes for routes in mounted if routes is not None])


def app_factory() -> Starlette:
    """Build one worker's app: the configuration from the same `$REPORTBOT_CONFIG` and environment as
    the parent, and the same redacting log filter installed before anything is handled."""
    install(logging.INFO)
    return build_app(load_config())
