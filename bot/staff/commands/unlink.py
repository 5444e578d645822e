"""`reportbot unlink REF REF`: undo a link between two reports (made by the reporter or by staff)."""

from __future__ import annotations

import argparse

from bot.config import Config
from bot.staff.context import StaffContext, StaffError, opened
from bot.staff.registry import Command
from bot.staff.selection import normalise_reference
from storage import series


async def unlink_reports(staff: StaffContext, first: str, second: str) -> None:
    """Remove the direct links between two reports (audited, with both references)."""
    a, b = normalise_reference(first), normalise_reference(second)
    async with staff.db.transaction() as s:
        removed = await series.unlink(s, a, b)
        if not removed:
            raise StaffError(f"{a} and {b} are not linked to each other")
        await staff.store.audit(
            s, actor=staff.who, action="unlink", references=(a, b), count=removed, detail=f"{a} from {b}"
        )


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("first", metavar="REF")
    parser.add_argument("second", metavar="REF")


async def run(args: argparse.Namespace, config: Config) -> int:
    async with opened(config) as staff:
        await unlink_reports(staff, args.first, args.second)
    a, b = normalise_reference(args.first), normalise_reference(args.second)
    print(f"reportbot unlink: {a} and {b} are no longer linked")
    return 0


COMMAND = Command("unlink", "undo a link between two reports", run, options=_options, order=136)
