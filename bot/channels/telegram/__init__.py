"""The Telegram channel: Bot API updates in, Bot API calls out, through python-telegram-bot 22.

    api.py       the Bot client; registering and removing the webhook
    parse.py     inbound: an update to the service's Envelope (plain text read straight from the JSON)
    send.py      outbound: Outbound to sendMessage / editMessageText / deleteMessages, paced
    webhook.py   the webhook and `reportbot poll`: authenticate, parse, one step, answer

It only translates: it never keeps conversation state (no ConversationHandler, no PTB persistence), never
logs what people typed, a chat id or the bot token. Only private chats are served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelRoutes, Sender

if TYPE_CHECKING:
    from bot.config import Config
    from bot.service import ReportService


class Telegram(Channel):
    name = "telegram"
    can_clear_chat = True  # quick exit deletes the chat's messages (bot.delivery.KeptMessages)

    def enabled(self, config: Config) -> bool:
        return config.telegram_enabled

    def routes(self, config: Config, service: ReportService) -> ChannelRoutes:
        from bot.channels.telegram.webhook import telegram_routes

        return telegram_routes(config, service)

    def sender(self, config: Config) -> Sender:
        """A sender for staff commands (reply); it does not clear chats."""
        from bot.channels.telegram.api import make_bot
        from bot.channels.telegram.send import TelegramSender

        return TelegramSender(make_bot(config))


CHANNEL = Telegram()
