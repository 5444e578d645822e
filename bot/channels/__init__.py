"""The channels this bot speaks, listed once, and what the rest of the bot asks about them.

Adding a channel: a folder beside these whose `__init__` defines `CHANNEL` (a `bot.channels.base.Channel`),
and one line in `LISTED`. Nothing else names a channel: the service reads `can_clear_chat` and
`rate_limited` here, the server mounts `routes`, staff commands ask for a `sender`.
"""

from __future__ import annotations

from datetime import datetime
from importlib import import_module

from bot.channels.base import Channel, Sender
from bot.config import Config
from bot.errors import ChannelUnavailable

LISTED = (
    "bot.channels.console",
    "bot.channels.telegram",
    "bot.channels.whatsapp",
    "bot.channels.web",
)


def load(modules: tuple[str, ...]) -> dict[str, Channel]:
    """The channels the modules define (each module's `CHANNEL`), by name; a name listed twice is a bug."""
    found: dict[str, Channel] = {}
    for module in modules:
        channel: Channel = import_module(module).CHANNEL
        if channel.name in found:
            raise ValueError(f"two channels are named {channel.name!r}")
        found[channel.name] = channel
    return found


CHANNELS = load(LISTED)


def can_clear_chat(name: str) -> bool:
    """Whether the bot can delete this channel's chat on quick exit (False for a channel not listed)."""
    channel = CHANNELS.get(name)
    return channel is not None and channel.can_clear_chat


def rate_limited(name: str) -> bool:
    """Whether per-chat limits apply on this channel (True for a channel not listed)."""
    channel = CHANNELS.get(name)
    return channel is None or channel.rate_limited


def enabled(config: Config) -> list[Channel]:
    """The channels this deployment runs, in the order listed."""
    return [channel for channel in CHANNELS.values() if channel.enabled(config)]


def sender_for(config: Config, channel: str) -> Sender:
    """The sender that delivers outbox messages of `channel` outside the server (staff commands)."""
    found = CHANNELS.get(channel)
    if found is None or not found.enabled(config):
        raise ChannelUnavailable(f"the {channel} channel is not available in this deployment")
    return found.sender(config)


def followup_refusal(
    config: Config, channel: str, last_inbound_at: datetime | None, now: datetime
) -> str | None:
    """Why a staff follow-up cannot be sent on this channel now, or None when it can."""
    found = CHANNELS.get(channel)
    return None if found is None else found.followup_refusal(config, last_inbound_at, now)


__all__ = [
    "CHANNELS",
    "Channel",
    "ChannelUnavailable",
    "can_clear_chat",
    "enabled",
    "followup_refusal",
    "load",
    "rate_limited",
    "sender_for",
]
