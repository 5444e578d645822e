"""`reportbot link REF REF [--note TEXT]`: join two reports the reporter did not join into one series."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from bot.config import Config
from bot.staff.context import StaffContext, StaffError, opened
from bot.staff.registry import Command
from bot.staff.selection import normalise_reference
from storage import series


async def link_reports(staff: StaffContext, first: str, second: str, note: str | None = None) -> None:
    """Link two reports (audited: the references and that a note was added, never the note)."""
    a, b = normalise_reference(first), normalise_reference(second)
    if a == b:
        raise StaffError("give two different references")
    note = note.strip() if note else None
    async with staff.db.transaction() as s:
        for ref in (a, b):
            if not await staff.store.reference_exists(s, ref):
                raise StaffError(f"no report has the reference {ref}")
        if await series.linked(s, a, b):
            raise StaffError(f"{a} and {b} are already linked")
        await series.link(s, staff.cipher, a, b, note, at=datetime.now(UTC))
        await staff.store.audit(
            s,
            actor=staff.who,
            action="link",
            references=(a, b),
            count=2,
            detail=f"{a} with {b}" + ("; note added" if note else ""),
        )


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("first", metavar="REF")
    parser.add_argument("second", metavar="REF")
    parser.add_argument("--note", metavar="TEXT", help="why they belong together (stored encrypted)")


async def run(args: argparse.Namespace, config: Config) -> int:
    async with opened(config) as staff:
        await link_reports(staff, args.first, args.second, args.note)
    a, b = normalise_reference(args.first), normalise_reference(args.second)
    print(f"reportbot link: {a} and {b} are now in one series")
    return 0


COMMAND = Command("link", "join two reports into one series", run, options=_options, order=135)
