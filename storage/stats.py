"""Counts for the partnership: reports by month, motivation, kind, channel and status.

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


async def count_by(db: Database, q: ReportQuery, zone: tzinfo) -> Counts:
    """Count matching reports by month, motivation, kind, channel and status."""
    counts = Counts()
    last_id = 0
    while True:
        rows = await _page(db, q, last_id)
        for row in rows:
            last_id = int(row[0] or 0)
            _count(counts, row, q, zone)
        if len(rows) < PAGE:
            return counts


# The columns read, in the order _count takes them: the id, then clear codes only.
_COUNTED = ("id", "submitted_at", "channel", "status", "motivations", "incident_types", "share_with")


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


def _count(counts: Counts, row: Any, q: ReportQuery, zone: tzinfo) -> None:
    _rid, submitted_at, channel, status, motivations, kinds, share_with = row
    if q.partner is not None and q.partner not in (share_with or []):
        return
    counts.total += 1
    counts.by_month[aware(submitted_at).astimezone(zone).strftime("%Y-%m")] += 1
    counts.by_channel[channel] += 1
    counts.by_status[status] += 1
    counts.by_motivation.update(set(motivations or []) or {"none given"})
    counts.by_kind.update(set(kinds or []) or {"none given"})
