"""The web chat: the same conversation in a browser, at /chat (see docs/webchat.md). Translate only.

    page.py      GET /chat (and /chat/embed), POST /chat/send and /chat/exit: session, CSRF, one step,
                 the replies rendered into the page (or JSON for chat.js)
    sessions.py  the opaque session cookie and what the server keeps for it (in memory)
    uploads.py   photos, checked by their own bytes and kept encrypted under data_dir
    templates/   server-rendered HTML (Jinja2, autoescaped); static/ the small script and the styles

Never: inline script or style, third-party assets, anything in browser storage, a post without a
valid session and CSRF token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelRoutes, Sender

if TYPE_CHECKING:
    from bot.config import Config
    from bot.service import ReportService


class Web(Channel):
    name = "web"
    can_clear_chat = True  # quick exit replaces the page and ends the session

    def enabled(self, config: Config) -> bool:
        return config.web.enabled

    def routes(self, config: Config, service: ReportService) -> ChannelRoutes:
        from bot.channels.web.page import webchat_routes

        return webchat_routes(config, service)

    def sender(self, config: Config) -> Sender:
        from bot.channels.web.page import WebSender

        return WebSender()


CHANNEL = Web()
