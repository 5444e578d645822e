"""`reportbot review REF --status new|in-progress|closed [--note TEXT]`: track where a report is."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from bot.config import Config
from bot.staff.context import StaffContext, StaffError, opened, undecryptable_refused
from bot.staff.registry import Command
from bot.staff.selection import normalise_reference
from storage import followup


async def set_status(
    staff: StaffContext, reference: str, status: str, note: str | None = None, *, now: datetime | None = None
) -> str:
    """Set a report's status (new, in-progress, closed), with an optional note. Returns the old one."""
    ref = normalise_reference(reference)
    if status not in followup.STATUSES:
        raise StaffError(f"--status: use one of {', '.join(followup.STATUSES)}")
    note = note.strip() if note else None
    now = now or datetime.now(UTC)
    async with staff.db.transaction() as s:
        report = await followup.lock_report(s, ref)
        if report is None:
            raise StaffError(f"no report has the reference {ref}")
        before = report.status
        await followup.review(s, staff.cipher, report, status=status, note=note, at=now)
        await staff.store.audit(
            s,
            actor=staff.who,
            action="review",
            reference=ref,
            detail=f"status {before} -> {status}" + ("; note added" if note else ""),
        )
    return before


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REF")
    parser.add_argument("--status", required=True, choices=followup.STATUSES)
    parser.add_argument("--note", metavar="TEXT", help="a note for colleagues (stored encrypted)")


async def run(args: argparse.Namespace, config: Config) -> int:
    async with opened(config) as staff:
        with undecryptable_refused():
            before = await set_status(staff, args.reference, args.status, args.note)
    ref = normalise_reference(args.reference)
    print(f"reportbot review: {ref} is now {args.status} (was {before})")
    return 0


COMMAND = Command("review", "set a report's status", run, options=_options, order=130)
