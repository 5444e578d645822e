"""Series of reports: repeat harassment by the same person or group, seen as one pattern (issue 18).

Two reports are linked when the reporter added the second to the first (`report.linked_to`, `add REFERENCE`
in the chat), when staff linked them (`reportbot link`, a `report_link` row with an encrypted note), or when
a report between them was erased (its links are kept as a `report_link` row of references only, so the rest
of the series stays together). A series is every report reachable through links, oldest first. Nothing here
reads or writes what a person typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from storage.crypto import Cipher
from storage.db import Database
from storage.models import Report, ReportLink


async def _edges(s: AsyncSession) -> list[tuple[str, str]]:
    joined = select(col(Report.reference), col(Report.linked_to)).where(col(Report.linked_to).is_not(None))
    staff = select(col(ReportLink.reference), col(ReportLink.other))
    return [(str(a), str(b)) for a, b in [*await s.execute(joined), *await s.execute(staff)]]


def _groups(edges: Iterable[tuple[str, str]]) -> list[set[str]]:
    parent: dict[str, str] = {}

    def root(ref: str) -> str:
        parent.setdefault(ref, ref)
        while parent[ref] != ref:
            parent[ref] = parent[parent[ref]]
            ref = parent[ref]
        return ref

    for a, b in edges:
        parent[root(a)] = root(b)
    groups: dict[str, set[str]] = {}
    for ref in list(parent):
        groups.setdefault(root(ref), set()).add(ref)
    return list(groups.values())


async def series_in(s: AsyncSession) -> dict[str, tuple[str, ...]]:
    """Every report that belongs to a series -> all references of its series, oldest first. An erased
    report still joins the others but is no longer listed."""
    groups = _groups(await _edges(s))
    every = {ref for group in groups for ref in group}
    if not every:
        return {}
    query = select(col(Report.reference), col(Report.submitted_at), col(Report.id)).where(
        col(Report.reference).in_(sorted(every))
    )
    order = {str(ref): (at, rid) for ref, at, rid in await s.execute(query)}  # one backend: all alike
    series: dict[str, tuple[str, ...]] = {}
    for group in groups:
        members = tuple(sorted((ref for ref in group if ref in order), key=order.__getitem__))
        if len(members) > 1:
            series.update(dict.fromkeys(members, members))
    return series


async def series_of_all(db: Database) -> dict[str, tuple[str, ...]]:
    async with db.transaction() as s:
        return await series_in(s)


async def linked(s: AsyncSession, a: str, b: str) -> bool:
    """Whether a and b are directly linked (by the reporter or by staff)."""
    person = select(col(Report.id)).where(
        or_(
            (col(Report.reference) == a) & (col(Report.linked_to) == b),
            (col(Report.reference) == b) & (col(Report.linked_to) == a),
        )
    )
    return (await s.execute(person)).first() is not None or bool(await _staff_links(s, a, b))


async def _staff_links(s: AsyncSession, a: str, b: str) -> list[int]:
    query = select(col(ReportLink.id)).where(
        or_(
            (col(ReportLink.reference) == a) & (col(ReportLink.other) == b),
            (col(ReportLink.reference) == b) & (col(ReportLink.other) == a),
        )
    )
    return [int(i or 0) for i in (await s.execute(query)).scalars()]


async def link(s: AsyncSession, cipher: Cipher, a: str, b: str, note: str | None, *, at: datetime) -> None:
    """Staff link two reports; the note is stored encrypted."""
    s.add(ReportLink(reference=a, other=b, note_enc=cipher.encrypt(note) if note else None, at=at))
    await s.flush()


async def unlink(s: AsyncSession, a: str, b: str) -> int:
    """Undo the direct links between a and b (the reporter's and staff's); how many there were."""
    ids = await _staff_links(s, a, b)
    if ids:
        await s.execute(delete(ReportLink).where(col(ReportLink.id).in_(ids)))
    cleared = 0
    for one, other in ((a, b), (b, a)):
        done = await s.execute(
            update(Report)
            .where(col(Report.reference) == one, col(Report.linked_to) == other)
            .values(linked_to=None)
        )
        cleared += int(done.rowcount or 0)  # type: ignore[attr-defined]
    return len(ids) + cleared


async def keep_links(s: AsyncSession, report: Report, *, at: datetime) -> None:
    """Before a report is erased: the link it made is kept as references only (no note, no content), so
    the reports before and after it stay one series."""
    if report.linked_to:
        s.add(ReportLink(reference=report.reference, other=report.linked_to, note_enc=None, at=at))
        await s.flush()
    await s.execute(
        update(ReportLink).where(col(ReportLink.reference) == report.reference).values(note_enc=None)
    )
    await s.execute(update(ReportLink).where(col(ReportLink.other) == report.reference).values(note_enc=None))
