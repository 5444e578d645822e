"""The channel registry: each channel is a folder with a `Channel` and one line in bot/channels/__init__.py,
and everything that used to switch on a channel's name reads the registry instead."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot import channels
from bot.config import Config
from bot.errors import ChannelUnavailable
from bot.server import build_app
from bot.service import ReportService
from storage.db import Database

PIGEON = """
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.channels.base import Channel, ChannelRoutes


async def coo(request):
    return PlainTextResponse("coo")


class Pigeon(Channel):
    name = "pigeon"
    can_clear_chat = True
    rate_limited = False

    def enabled(self, config):
        return True

    def routes(self, config, service):
        return ChannelRoutes(routes=[Route("/pigeon", coo, methods=["GET"])])


CHANNEL = Pigeon()
"""


def test_each_channel_says_what_it_can_do_and_unknown_names_get_the_safe_defaults() -> None:
    assert list(channels.CHANNELS) == ["console", "telegram", "whatsapp", "web"]
    assert [channels.can_clear_chat(n) for n in ("console", "telegram", "whatsapp", "web", "fax")] == [
        False,
        True,
        False,
        True,
        False,
    ]
    # Only the operator's own terminal goes unpaced; a name nobody listed is limited like any chat.
    assert [channels.rate_limited(n) for n in ("console", "telegram", "whatsapp", "web", "fax")] == [
        False,
        True,
        True,
        True,
        True,
    ]


def test_a_channel_a_deployment_does_not_run_has_no_sender(make_config: Callable[..., Config]) -> None:
    config = make_config()
    with pytest.raises(ChannelUnavailable, match="the telegram channel is not available"):
        channels.sender_for(config, "telegram")
    with pytest.raises(ChannelUnavailable, match="the fax channel is not available"):
        channels.sender_for(config, "fax")
    assert channels.sender_for(config, "console").channel == "console"
    assert channels.followup_refusal(config, "fax", None, datetime.now(UTC)) is None


def test_two_channels_of_one_name_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pigeon_channel.py").write_text(PIGEON)
    (tmp_path / "pigeon_again.py").write_text(PIGEON)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="two channels are named 'pigeon'"):
        channels.load(("pigeon_channel", "pigeon_again"))


async def test_a_new_channel_is_one_module_and_one_line_and_the_server_and_service_follow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_config: Callable[..., Config]
) -> None:
    (tmp_path / "pigeon_channel.py").write_text(PIGEON)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(channels, "CHANNELS", channels.load((*channels.LISTED, "pigeon_channel")))
    try:
        config = make_config()
        # The service reads what the channel says of itself: the flow is told it can clear the chat.
        service = ReportService(config, Database(config.database_url))
        assert service.context("pigeon", datetime.now(UTC), "").can_clear_chat is True
        assert channels.rate_limited("pigeon") is False
        # The server mounts its routes with nobody else's code touched.
        app = build_app(config)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client:
            response = await client.get("/pigeon")
        assert (response.status_code, response.text) == (200, "coo")
        await service.db.dispose()
    finally:
        sys.modules.pop("pigeon_channel", None)
