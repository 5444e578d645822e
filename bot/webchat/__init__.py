"""The web chat channel: the same conversation in a browser, at /chat (see docs/webchat.md)."""

from bot.webchat.app import CATALOG_KEYS, CHANNEL, WebChat, WebSender, webchat_routes

__all__ = ["CATALOG_KEYS", "CHANNEL", "WebChat", "WebSender", "webchat_routes"]
