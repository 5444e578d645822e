"""`reportbot erase REF`: delete one report and everything linked to it."""

from __future__ import annotations

import argparse
import sys

from bot.config import Config
from bot.staff.context import opened
from bot.staff.registry import EXIT_REFUSED, Command
from bot.staff.selection import normalise_reference
from storage import maintenance


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REF", help="the report's reference, e.g. HC-7K3Q-9XPD")


async def run(args: argparse.Namespace, config: Config) -> int:
    # The reference is read the way the chat reads it (flows.references), before anything is opened.
    reference = normalise_reference(args.reference)
    async with opened(config) as staff:
        erased = await maintenance.erase_report(
            staff.db, staff.store, reference, actor=staff.who, evidence=staff.evidence
        )
    if erased is None:
        print(f"reportbot: no report {reference}", file=sys.stderr)
        return EXIT_REFUSED
    print(
        f"reportbot: erased {reference}: report=1 transcript_entries={erased.transcript_entries} "
        f"outbox_messages={erased.outbox_messages} evidence_files={erased.evidence_files}"
    )
    return 0


COMMAND = Command("erase", "delete one report and everything linked to it", run, options=_options, order=80)
