"""`reportbot purge`: delete drafts and reports past their retention; for cron."""

from __future__ import annotations

import argparse
import logging

from bot.config import Config
from bot.staff.context import opened
from bot.staff.registry import Command
from storage import maintenance

log = logging.getLogger("reportbot")


async def run(args: argparse.Namespace, config: Config) -> int:
    async with opened(config) as staff:
        counts = await maintenance.purge(
            staff.db,
            staff.store,
            draft_retention_days=config.service.draft_retention_days,
            report_retention_days=config.service.report_retention_days,
            actor=staff.who,
            evidence=staff.evidence,
        )
    print("reportbot: purged " + ", ".join(f"{k}={v}" for k, v in counts.as_dict().items()))
    log.info("purge drafts=%d reports=%d", counts.drafts, counts.reports)
    return 0


COMMAND = Command(
    "purge",
    "delete drafts and reports (with their evidence files) past their retention; for cron",
    run,
    order=70,
)
