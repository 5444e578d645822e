"""Which reports a staff command works on, as given on the command line: a reference, days, a partner."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypedDict, Unpack
from zoneinfo import ZoneInfo

from bot.config import Config
from bot.staff.context import StaffError
from flows.references import EXAMPLE, parse_reference
from storage.export import ReportQuery


def normalise_reference(text: str) -> str:
    """Any form the chat accepts (`hc7k3q9xpd`, `HC 7K3Q 9XPD`) -> `HC-7K3Q-9XPD`; else StaffError."""
    ref = parse_reference(text)
    if ref is None:
        raise StaffError(
            f"{text!r} is not a report reference (they look like {EXAMPLE} and never use 0, O, 1, I or L)"
        )
    return ref


def parse_day(text: str, option: str) -> date:
    """A YYYY-MM-DD date, or StaffError naming the option."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise StaffError(f"{option}: {text!r} is not a date like 2026-03-31") from None


def day_options(parser: argparse.ArgumentParser) -> None:
    """--since and --until, for the commands that select reports by the day they were sent."""
    parser.add_argument("--since", metavar="YYYY-MM-DD", help="submitted on or after this day")
    parser.add_argument("--until", metavar="YYYY-MM-DD", help="submitted on or before this day")


@dataclass(frozen=True)
class Selection:
    """The reports a staff command works on, as given on the command line."""

    since: date | None = None
    until: date | None = None
    partner: str | None = None
    reference: str | None = None
    series: str | None = None  # every report of this report's series (`export --series`)

    def query(self, zone: ZoneInfo) -> ReportQuery:
        """Dates are inclusive calendar days in the service's time zone."""
        since = datetime.combine(self.since, time(), zone).astimezone(UTC) if self.since else None
        before = (
            datetime.combine(self.until + timedelta(days=1), time(), zone).astimezone(UTC)
            if self.until
            else None
        )
        return ReportQuery(since=since, before=before, partner=self.partner, reference=self.reference)

    def describe(self) -> str:
        """The selection in words, for the HTML header and the audit detail."""
        described = describe_filters(
            self.since.isoformat() if self.since else None,
            self.until.isoformat() if self.until else None,
            self.partner,
            self.reference,
        )
        if self.series is None:
            return described
        of = f"the series of {self.series}"
        return of if described == "all reports" else f"{of}, {described}"


class Filters(TypedDict, total=False):
    """The filters as typed on the command line; absent or None when not given."""

    since: str | None  # YYYY-MM-DD
    until: str | None  # YYYY-MM-DD
    partner: str | None  # a partner id from the config
    reference: str | None  # in any form the chat accepts
    series: str | None  # a reference, in any form the chat accepts


def selection(config: Config, **filters: Unpack[Filters]) -> Selection:
    """Check the command-line filters against the configuration; StaffError names a bad one."""
    first, last = _days(filters.get("since"), filters.get("until"))
    partner, reference = filters.get("partner"), filters.get("reference")
    if partner is not None:
        _check_partner(config, partner)
    ref = normalise_reference(reference) if reference else None
    series = filters.get("series")
    of = normalise_reference(series) if series else None
    return Selection(since=first, until=last, partner=partner, reference=ref, series=of)


def _days(since: str | None, until: str | None) -> tuple[date | None, date | None]:
    first = parse_day(since, "--since") if since else None
    last = parse_day(until, "--until") if until else None
    if first and last and first > last:
        raise StaffError(f"--since {first} is after --until {last}")
    return first, last


def _check_partner(config: Config, partner: str) -> None:
    # Partners, and support services a reporter can choose to contact them (shared the same way).
    ids = [p.id for p in config.partners] + [s.id for s in config.support if s.referrals and s.id]
    if partner not in ids:
        known = ", ".join(ids) if ids else "none are configured"
        raise StaffError(f"--partner: {partner!r} is not a configured partner id ({known})")


def describe_filters(since: str | None, until: str | None, partner: str | None, reference: str | None) -> str:
    """The selection in words: `report HC-…, shared with police, submitted 2026-01-01 to 2026-03-31`."""
    parts = []
    if reference:
        parts.append(f"report {reference}")
    if partner:
        parts.append(f"shared with {partner}")
    if since and until:
        parts.append(f"submitted {since} to {until}")
    elif since:
        parts.append(f"submitted from {since}")
    elif until:
        parts.append(f"submitted up to {until}")
    return ", ".join(parts) or "all reports"
