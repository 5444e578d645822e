"""Which channels a deployment runs, and how to reach a person on each one outside a webhook.

Staff commands (`reportbot reply`) and background delivery ask here for a channel's sender, so that
they never import a platform library themselves. Each channel module fills in its own branch.
"""

from __future__ import annotations

import sys
from datetime import datetime

from bot.config import Config
from bot.outbox import Sender


class ChannelUnavailable(Exception):
    """The channel is not configured in this deployment, or cannot reach the person now."""


def sender_for(config: Config, channel: str) -> Sender:
    """The sender that delivers outbox messages of `channel`."""
    if channel == "console":
        from bot.console import ConsoleSender

        return ConsoleSender(sys.stdout, terminal=False)
    if channel == "telegram" and config.telegram_enabled:
        from bot import telegram

        return telegram.sender_for(config)
    if channel == "whatsapp" and config.whatsapp_enabled:
        from bot import whatsapp

        if not whatsapp.can_send(config):
            raise ChannelUnavailable("WhatsApp follow-ups need whatsapp.account_sid and whatsapp.from")
        return whatsapp.make_sender(config, whatsapp.config_lookup(config))
    if channel == "web" and config.web.enabled:
        from bot import webchat

        return webchat.WebSender()
    raise ChannelUnavailable(f"the {channel} channel is not available in this deployment")


def followup_refusal(
    config: Config, channel: str, last_inbound_at: datetime | None, now: datetime
) -> str | None:
    """Why a staff follow-up cannot be sent on this channel now, or None when it can."""
    if channel == "whatsapp":
        from bot import whatsapp

        return whatsapp.followup_refusal(config, last_inbound_at, now)
    return None
