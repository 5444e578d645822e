"""Counts for the partnership: reports by month, motivation, kind, channel and status, and how many
stand alone, how many series there are and how many repeat incidents they hold.

Only the clear codes are read (never a sealed field, never a transcript), page by page, so the counts
can be shared and memory stays flat. Months are calendar months in the service's time zone.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from storage.db import Database
from storage.export import ReportQuery, aware, conditions
from storage.models import Report
from storage.series import series_in

PAGE = 2000


@dataclass
class Counts:
    """Report counts; a report with several motivations or kinds counts once under each."""

    total: int = 0
    by_month: Counter[str] = field(default_factory=Counter)  # "2026-03"
    by_motivation: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_channel: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_language: Counter[str] = field(default_factory=Counter)  # the catalog locale reported in
    # Repeat harassment (storage.series): reports on their own, series (counted once each), and the later
    # reports of a series (repeat incidents); the first report of a series is neither single nor repeat.
    single: int = 0
    series: set[str] = field(default_factory=set)  # the first reference of each series counted
    repeats: int = 0


async def count_by(db: Database, q: ReportQuery, zone: tzinfo) -> Counts:
    """Count matching reports by month, motivation, kind, channel and status."""
    counts = Counts()
    last_id = 0
    async with db.transaction() as s:
        series = await series_in(s)
    while True:
        rows = await _page(db, q, last_id)
        for row in rows:
            last_id = int(row[0] or 0)
            if _count(counts, row, q, zone):
                _count_series(counts, str(row[-1]), series)
        if len(rows) < PAGE:
            return counts


# The columns read, in the order _count takes them: the id, then clear codes only.
_COUNTED = (
    "id",
    "submitted_at",
    "channel",
    "status",
    "motivations",
    "incident_types",
    "share_with",
    "language",
    "reference",
)


async def _page(db: Database, q: ReportQuery, after: int) -> list[Any]:
    """The next page of matching reports' countable columns, after a report id."""
    async with db.transaction() as s:
        query = (
            select(*(col(getattr(Report, name)) for name in _COUNTED))
            .where(col(Report.id) > after, *conditions(q))
            .order_by(col(Report.id))
            .limit(PAGE)
        )
        return list((await s.execute(query)).all())


def _count_series(counts: Counts, reference: str, series: dict[str, tuple[str, ...]]) -> None:
    found = series.get(reference)
    if found is None:
        counts.single += 1
        return
    counts.series.add(found[0])
    if found[0] != reference:
        counts.repeats += 1


def _count(counts: Counts, row: Any, q: ReportQuery, zone: tzinfo) -> bool:
    _rid, submitted_at, channel, status, motivations, kinds, share_with, language, _ref = row
    if q.partner is not None and q.partner not in (share_with or []):
        return False
    counts.total += 1
    counts.by_month[aware(submitted_at).astimezone(zone).strftime("%Y-%m")] += 1
    counts.by_channel[channel] += 1
    counts.by_status[status] += 1
    counts.by_language[language or "en"] += 1
    counts.by_motivation.update(set(motivations or []) or {"none given"})
    counts.by_kind.update(set(kinds or []) or {"none given"})
    return True
