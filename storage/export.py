"""The read side for staff: reports with their transcripts, decrypted one row at a time, in a stream.

Reports are read in pages by id (keyset pagination, each page in its own short transaction), and each
page's transcript lines are fetched together, decrypted and handed out one report at a time. Memory
therefore stays flat however many reports match, on SQLite and PostgreSQL alike, and a long export
never holds SQLite's writer lock for more than one page. The records have the fields DESIGN.md lists
under "Staff commands"; this module never writes files and never formats anything for people.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from storage.crypto import Cipher
from storage.db import Database
from storage.models import Report, TranscriptEntry
from storage.series import series_of_all

PAGE = 200  # reports per page: big enough to be quick, small enough to keep memory flat


@dataclass(frozen=True)
class ReportQuery:
    """Which reports to read. Times are aware; `since` is inclusive, `before` exclusive."""

    since: datetime | None = None
    before: datetime | None = None
    partner: str | None = None  # only reports whose reporter consented to this partner id
    reference: str | None = None
    references: tuple[str, ...] | None = None  # only these reports (a series: `export --series`)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, to the second."""
    if value is None:
        return None
    return aware(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions(q: ReportQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if q.since is not None:
        where.append(col(Report.submitted_at) >= q.since)
    if q.before is not None:
        where.append(col(Report.submitted_at) < q.before)
    if q.reference is not None:
        where.append(col(Report.reference) == q.reference)
    if q.references is not None:
        where.append(col(Report.reference).in_(list(q.references)))
    if q.partner is not None:
        # share_with is a JSON list of ids; `"id"` (quoted) only matches a whole element. A coarse filter
        # in SQL so that pages are not mostly empty; the exact check is made again on each row.
        pattern = '%"' + _like_literal(q.partner) + '"%'
        where.append(cast(col(Report.share_with), String).like(pattern, escape="\\"))
    return where


def _matches(report: Report, q: ReportQuery) -> bool:
    return q.partner is None or q.partner in (report.share_with or [])


async def count_reports(db: Database, q: ReportQuery) -> int:
    """How many reports match (for a progress bar; the partner filter is the coarse SQL one)."""
    async with db.transaction() as s:
        query = select(func.count()).select_from(Report).where(*conditions(q))
        return int((await s.execute(query)).scalar() or 0)


async def report_pages(db: Database, q: ReportQuery, *, page: int = PAGE) -> AsyncIterator[list[Report]]:
    """Matching reports in id order, a page at a time, each page read in its own transaction."""
    last_id = 0
    while True:
        async with db.transaction() as s:
            query = (
                select(Report)
                .where(col(Report.id) > last_id, *conditions(q))
                .order_by(col(Report.id))
                .limit(page)
            )
            rows = list((await s.execute(query)).scalars())
            s.expunge_all()
        if not rows:
            return
        last_id = int(rows[-1].id or 0)
        matching = [r for r in rows if _matches(r, q)]
        if matching:
            yield matching
        if len(rows) < page:
            return


async def _transcripts(
    db: Database, cipher: Cipher, report_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    lines: dict[int, list[dict[str, Any]]] = {rid: [] for rid in report_ids}
    async with db.transaction() as s:
        query = (
            select(
                col(TranscriptEntry.report_id),
                col(TranscriptEntry.at),
                col(TranscriptEntry.direction),
                col(TranscriptEntry.author),
                col(TranscriptEntry.text_enc),
            )
            .where(col(TranscriptEntry.report_id).in_(list(report_ids)))
            .order_by(col(TranscriptEntry.report_id), col(TranscriptEntry.seq))
        )
        for report_id, at, direction, author, text_enc in await s.execute(query):
            if report_id is None:  # excluded by the query; here for the type checker
                continue
            lines[report_id].append(
                {
                    "at": iso_utc(at),
                    "direction": direction,
                    "author": author,
                    "text": cipher.decrypt(text_enc),
                }
            )
    return lines


async def iter_reports(
    db: Database, cipher: Cipher, q: ReportQuery, *, transcripts: bool = True, page: int = PAGE
) -> AsyncIterator[dict[str, Any]]:
    """Every matching report as an export record (DESIGN.md fields), decrypted, oldest first."""
    series = await series_of_all(db)
    async for rows in report_pages(db, q, page=page):
        ids = [int(r.id or 0) for r in rows]
        by_report = await _transcripts(db, cipher, ids) if transcripts else {}
        for report in rows:
            record = report_record(cipher, report)
            record["series"] = list(series.get(report.reference, ()))
            if transcripts:
                record["transcript"] = by_report.pop(int(report.id or 0), [])
            yield record


def report_record(cipher: Cipher, report: Report) -> dict[str, Any]:
    """One report in the export shape, without its transcript."""
    sealed_value = cipher.decrypt_json(report.sealed_enc)
    sealed: dict[str, Any] = sealed_value if isinstance(sealed_value, dict) else {}
    location = sealed.get("location") or {}
    contact = sealed.get("contact")
    occurred: date | None = report.occurred_on
    return {
        "reference": report.reference,
        "submitted_at": iso_utc(report.submitted_at),
        "channel": report.channel,
        "language": report.language,
        "role": report.role,
        "organisation": sealed.get("organisation"),
        "someone_else_knows": sealed.get("someone_else_knows"),
        "incident_types": list(report.incident_types or []),
        "motivations": list(report.motivations or []),
        "occurred_on": occurred.isoformat() if occurred is not None else None,
        "occurred_at_text": sealed.get("occurred_at_text"),
        "location": {
            "text": location.get("text"),
            "latitude": location.get("latitude"),
            "longitude": location.get("longitude"),
        },
        "description": sealed.get("description"),
        "repeat": report.repeat,
        "offender": sealed.get("offender"),
        "injuries": sealed.get("injuries"),
        "witnesses": sealed.get("witnesses"),
        "evidence": list(sealed.get("evidence") or []),
        "support_requested": report.support_requested,
        "anonymous": bool(report.anonymous),
        "contact": None if report.anonymous else _contact(contact),
        "share_with": list(report.share_with or []),
        "linked_to": report.linked_to,
        "helper_agreed": _helper(sealed).get("agreed"),
        "helper_contact": _helper(sealed).get("contact"),
        "series": [],
        "status": report.status,
        "status_changed_at": iso_utc(report.status_changed_at),
        "staff_notes": _notes(cipher, report),
        "transcript": [],
    }


def _helper(sealed: dict[str, Any]) -> dict[str, Any]:
    helper = sealed.get("helper")
    return helper if isinstance(helper, dict) else {}


def _notes(cipher: Cipher, report: Report) -> list[dict[str, Any]]:
    """Staff notes, oldest first (a note stored before notes were a list comes as one)."""
    if not report.staff_note_enc:
        return []
    stored = cipher.decrypt_json(report.staff_note_enc)
    return stored if isinstance(stored, list) else [{"at": None, "status": None, "text": str(stored)}]


def _contact(c: object) -> dict[str, Any] | None:
    if not isinstance(c, dict):
        return None
    return {
        "name": c.get("name"),
        "phone": c.get("phone"),
        "email": c.get("email"),
        "in_chat": bool(c.get("in_chat")),
        "safe_times": c.get("safe_times"),
        "notes": c.get("notes"),
        "by": c.get("by"),
        "leave_message": c.get("leave_message"),
        "no_calls": bool(c.get("no_calls")),
    }
