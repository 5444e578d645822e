"""The WhatsApp channel through Twilio: translate only.

    parse.py     inbound: Twilio's form fields to the neutral Inbound
    render.py    outbound as WhatsApp text (numbered options, cut to Twilio's limit) and TwiML
    webhook.py   POST /whatsapp/webhook: signature, one step, the replies in the TwiML response
    send.py      the REST client: staff follow-ups and redelivery, under the 24-hour rule

Never: log or store `From`, `ProfileName`, `WaId` or anything the person typed in clear; act on a
request whose signature fails.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from bot.channels.base import Channel, ChannelRoutes, Sender
from bot.errors import ChannelUnavailable

if TYPE_CHECKING:
    from bot.config import Config
    from bot.service import ReportService


class WhatsApp(Channel):
    name = "whatsapp"

    def enabled(self, config: Config) -> bool:
        return config.whatsapp_enabled

    def routes(self, config: Config, service: ReportService) -> ChannelRoutes:
        from bot.channels.whatsapp.webhook import whatsapp_routes

        return whatsapp_routes(config, service)

    def sender(self, config: Config) -> Sender:
        from bot.channels.whatsapp.send import can_send, config_lookup, make_sender

        if not can_send(config):
            raise ChannelUnavailable("WhatsApp follow-ups need whatsapp.account_sid and whatsapp.from")
        return make_sender(config, config_lookup(config))

    def followup_refusal(self, config: Config, last_inbound_at: datetime | None, now: datetime) -> str | None:
        from bot.channels.whatsapp.send import followup_refusal

        return followup_refusal(config, last_inbound_at, now)


CHANNEL = WhatsApp()
