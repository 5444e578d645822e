"""`reportbot rotate-keys`: re-encrypt everything (database values and evidence files) under the newest key."""

from __future__ import annotations

import argparse
import sys

from bot.config import Config
from bot.staff.context import opened
from bot.staff.registry import EXIT_REFUSED, Command
from storage import maintenance


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")


async def run(args: argparse.Namespace, config: Config) -> int:
    async with opened(config) as staff:
        if args.batch_size < 1:
            print("reportbot: --batch-size must be at least 1", file=sys.stderr)
            return EXIT_REFUSED
        rotated = await maintenance.rotate_keys(
            staff.db, staff.store, actor=staff.who, batch_size=args.batch_size
        )
        files, files_current = staff.evidence.rotate()
        stale = await maintenance.stale_values(staff.db, staff.store) + staff.evidence.stale()
    print(
        f"reportbot: re-encrypted {rotated.rotated} values ({rotated.current} already under the "
        f"newest key) and {files} evidence files ({files_current} already); {stale} left under older keys"
    )
    if stale == 0 and len(config.security.encryption_keys) > 1:
        print("reportbot: older keys can now be removed from security.encryption_keys")
    return 0 if stale == 0 else 1


COMMAND = Command(
    "rotate-keys",
    "re-encrypt everything under the newest encryption key",
    run,
    options=_options,
    order=90,
)
