"""`reportbot stats`: counts for partnership meetings, by month, motivation, kind, channel, language and
status.

Codes only, never free text. `--chart` also draws them on one page (chart.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.config import Config
from bot.staff.context import (
    StaffContext,
    StaffError,
    code_label,
    labeller,
    lang_option,
    language_name,
    opened,
    undecryptable_refused,
)
from bot.staff.registry import Command
from bot.staff.selection import Selection, day_options, selection
from storage.stats import Counts, count_by

CHANNEL_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": "Web chat", "console": "Console"}


async def count(staff: StaffContext, sel: Selection) -> Counts:
    """Counts of the selected reports (codes only, never free text)."""
    return await count_by(staff.db, sel.query(staff.zone), staff.zone)


def months_between(first: str, last: str) -> list[str]:
    """Every "YYYY-MM" from first to last, so that empty months show as zero."""
    year, month = (int(x) for x in first.split("-"))
    end = tuple(int(x) for x in last.split("-"))
    out = []
    while (year, month) <= end:
        out.append(f"{year:04d}-{month:02d}")
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return out


def counts_table(counts: Counts, label: Callable[[str], str] = code_label) -> list[tuple[str, list[Any]]]:
    """The counts as titled sections of (label, count) rows, biggest first (months in order)."""
    months = sorted(counts.by_month)
    by_month = (
        [(m, counts.by_month.get(m, 0)) for m in months_between(months[0], months[-1])] if months else []
    )
    return [
        ("By month", by_month),
        ("By motivation", [(label(k), n) for k, n in counts.by_motivation.most_common()]),
        ("By kind of incident", [(label(k), n) for k, n in counts.by_kind.most_common()]),
        ("By channel", [(CHANNEL_NAMES.get(k, k), n) for k, n in counts.by_channel.most_common()]),
        ("By language", [(language_name(k), n) for k, n in counts.by_language.most_common()]),
        ("By status", [(k.replace("-", " "), n) for k, n in counts.by_status.most_common()]),
        (
            "Repeat harassment",
            [
                ("Reports on their own", counts.single),
                ("Series (reports linked together)", len(counts.series)),
                ("Repeat incidents (later reports of a series)", counts.repeats),
            ]
            if counts.total
            else [],
        ),
    ]


def _print(title: str, sections: list[tuple[str, list[Any]]]) -> None:
    out = Console(highlight=False, soft_wrap=True)
    out.print(title)
    for heading, rows in sections:
        table = Table(title=heading, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column("what")
        table.add_column("count", justify="right")
        for name, n in rows:
            table.add_row(str(name), str(n))
        if not rows:
            table.add_row("no reports", "0")
        out.print()
        out.print(table)


def _chart(target: str, title: str, sections: list[tuple[str, list[Any]]]) -> None:
    from bot.staff.commands.stats.chart import draw

    path = Path(target)
    if not path.parent.is_dir():
        raise StaffError(f"--chart: the folder {path.parent} does not exist")
    draw(path, title, sections)
    print(f"reportbot stats: chart written to {path}", file=sys.stderr)


def _options(parser: argparse.ArgumentParser) -> None:
    day_options(parser)
    parser.add_argument("--chart", metavar="PATH.png", help="also draw the counts as a bar chart")
    lang_option(parser)


async def run(args: argparse.Namespace, config: Config) -> int:
    label = labeller(args.lang)
    async with opened(config) as staff:
        sel = selection(config, since=args.since, until=args.until)
        with undecryptable_refused():
            counts = await count(staff, sel)
    sections = counts_table(counts, label)
    noun = "report" if counts.total == 1 else "reports"
    title = f"{config.service.name}: {counts.total} {noun} ({sel.describe()})"
    _print(title, sections)
    if args.chart:
        _chart(args.chart, title, sections)
    return 0


COMMAND = Command(
    "stats",
    "count reports by month, motivation, kind, channel and language",
    run,
    options=_options,
    order=140,
)
