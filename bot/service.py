"""Moved to bot.app.step; this name stays until the channels' and staff code import it from there."""

from bot.app.step import Envelope, Outcome, ReportService, describe_kept, storable

__all__ = ["Envelope", "Outcome", "ReportService", "describe_kept", "storable"]
