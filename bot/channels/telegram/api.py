"""The Bot API client (python-telegram-bot's `Bot`), and registering or removing the webhook.

Never logs an exception's text: PTB puts the token into InvalidToken's message.
"""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError
from telegram.request import BaseRequest, HTTPXRequest

from bot.config import Config
from bot.errors import ConfigError

log = logging.getLogger("reportbot.telegram")

WEBHOOK_PATH = "/telegram/webhook"
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member", "channel_post")


def make_bot(
    config: Config,
    *,
    request: BaseRequest | None = None,
    get_updates_request: BaseRequest | None = None,
) -> Bot:
    """A Bot pointed at `telegram.api_base_url` (Telegram's, a local Bot API server, or a test double);
    files (the evidence people send) are downloaded from the same server's `/file/bot` address."""
    return Bot(
        config.telegram.token,
        base_url=config.telegram.api_base_url,
        base_file_url=file_url(config.telegram.api_base_url),
        request=request or HTTPXRequest(connection_pool_size=32),
        get_updates_request=get_updates_request or HTTPXRequest(read_timeout=60.0),
    )


def file_url(api_base_url: str) -> str:
    """Where the Bot API at `api_base_url` (".../bot") serves files (".../file/bot")."""
    base = api_base_url.rstrip("/")
    return base.removesuffix("/bot") + "/file/bot"


async def start_bot(bot: Bot) -> None:
    """Open the bot's connections; a Telegram that cannot be reached now is not a reason not to start."""
    try:
        await bot.initialize()
    except TelegramError as exc:
        # Never log the exception text: PTB puts the token into InvalidToken's message.
        log.warning("telegram not reachable at start error=%s", type(exc).__name__)


def webhook_url(config: Config) -> str:
    """Where Telegram should post updates: `telegram.public_url` + the webhook path."""
    if not config.telegram.public_url:
        raise ConfigError(
            "telegram.public_url", "is required to set the webhook (the https address of this server)"
        )
    if not config.telegram.webhook_secret:
        raise ConfigError("telegram.webhook_secret", "is required to set the webhook")
    return config.telegram.public_url.rstrip("/") + WEBHOOK_PATH


async def set_webhook(config: Config, bot: Bot | None = None) -> str:
    """Register the webhook with its secret token; once per deployment, never from each worker."""
    url = webhook_url(config)
    bot = bot or make_bot(config)
    await start_bot(bot)
    try:
        await bot.set_webhook(
            url, secret_token=config.telegram.webhook_secret, allowed_updates=list(ALLOWED_UPDATES)
        )
    finally:
        await bot.shutdown()
    return url


async def delete_webhook(config: Config, bot: Bot | None = None) -> None:
    """Remove the webhook (before `reportbot poll`, or when retiring a deployment)."""
    bot = bot or make_bot(config)
    await start_bot(bot)
    try:
        await bot.delete_webhook()
    finally:
        await bot.shutdown()
