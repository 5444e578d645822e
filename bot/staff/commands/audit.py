"""`reportbot audit`: list audit events (who did what, to which report, how many; never report content)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

from bot.config import Config
from bot.staff.context import opened
from bot.staff.registry import EXIT_REFUSED, Command
from bot.staff.selection import normalise_reference
from storage import maintenance
from storage.models import AuditEvent


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="DATE", help="only events on or after this date (YYYY-MM-DD)")
    parser.add_argument("--action", help="only this action (export, reply, erase, purge, rotate-keys, ...)")
    parser.add_argument("--reference", metavar="REF", help="only events that touched this report")
    parser.add_argument("--limit", type=int, default=1000, help="at most this many events (default 1000)")


def line(event: AuditEvent) -> str:
    """One event, tab-separated: time, actor, action, count, references, detail."""
    refs = ",".join(event.refs or ([event.reference] if event.reference else [])) or "-"
    return (
        f"{event.at.astimezone(UTC).isoformat(timespec='seconds')}\t{event.actor}\t{event.action}\t"
        f"count={event.count}\trefs={refs}\t{event.detail or ''}".rstrip()
    )


async def run(args: argparse.Namespace, config: Config) -> int:
    reference = normalise_reference(args.reference) if args.reference else None
    async with opened(config) as staff:
        try:
            since = datetime.fromisoformat(args.since).replace(tzinfo=UTC) if args.since else None
        except ValueError:
            print(f"reportbot: --since {args.since!r} is not a date like 2026-01-31", file=sys.stderr)
            return EXIT_REFUSED
        events = await maintenance.audit_events(
            staff.db, since=since, action=args.action, reference=reference, limit=args.limit
        )
    for event in events:
        print(line(event))
    if not events:
        print("reportbot: no audit events", file=sys.stderr)
    return 0


COMMAND = Command("audit", "list audit events (never report content)", run, options=_options, order=100)
