"""Moved to bot.app (the step: bot.app.step); this name stays until the channels' and staff code import
from there."""

from bot.app.envelope import Envelope, Outcome, describe_kept, storable
from bot.app.step import ReportService

__all__ = ["Envelope", "Outcome", "ReportService", "describe_kept", "storable"]
