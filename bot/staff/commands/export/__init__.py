"""`reportbot export`: write decrypted reports to a file only the person running it can read.

The formats: writers.py (jsonl, csv), html.py (the printable page, photos inline), bundle.py (zip: the
reports as jsonl and the files people sent, original bytes); answers.py reads the offender and harm answers
in either stored form. Reports are read in pages and written as they come (flat memory; the zip keeps its
jsonl in memory until the end).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO, cast

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.config import Config
from bot.staff.commands.export.bundle import ZipWriter
from bot.staff.commands.export.html import HtmlWriter
from bot.staff.commands.export.writers import CsvWriter, ExportInfo, JsonLinesWriter, Writer, encoding_for
from bot.staff.context import StaffContext, StaffError, labeller, lang_option, opened, undecryptable_refused
from bot.staff.registry import Command
from bot.staff.selection import Selection, day_options, selection
from storage import series
from storage.export import ReportQuery, count_reports, iter_reports

# An export's audit event lists the references it holds, up to this many; a bigger export is recorded by
# its selection (dates, partner) instead, so that memory stays flat however many reports go out.
AUDIT_REFERENCES_MAX = 10_000

WRITERS: dict[str, Callable[[TextIO, ExportInfo], Writer]] = {
    "jsonl": lambda out, info: JsonLinesWriter(out),
    "csv": lambda out, info: CsvWriter(out),
    "html": HtmlWriter,
}
BINARY: dict[str, Callable[[BinaryIO, ExportInfo], Writer]] = {"zip": ZipWriter}
FORMATS = (*WRITERS, *BINARY)

Progressed = Callable[[int, int], None]


async def export_reports(
    staff: StaffContext,
    fmt: str,
    out: Path,
    sel: Selection,
    *,
    progress: Progressed | None = None,
    now: datetime | None = None,
    lang: str | None = None,
) -> int:
    """Write the selected reports to `out` (owner-only), then audit. Returns how many. The labels of the
    answers people chose are English, or `lang`'s (a partner may read them in their language)."""
    if fmt not in FORMATS:
        raise StaffError(f"--format: use one of {', '.join(FORMATS)}")
    _check_target(out)
    label = labeller(lang)
    query = await _query(staff, sel)
    info = ExportInfo(
        service=staff.config.service.name,
        operator=staff.config.service.operator,
        generated_at=now or datetime.now(UTC),
        filters=sel.describe(),
        zone=staff.zone,
        partner_names={
            **{s.id: s.name for s in staff.config.support if s.id},
            **{p.id: p.name for p in staff.config.partners},
        },
        label=label,
        evidence=staff.evidence,
    )
    binary = fmt in BINARY
    with _private_file(out, None if binary else encoding_for(fmt)) as fh:
        with fh:
            writer = BINARY[fmt](cast(BinaryIO, fh), info) if binary else WRITERS[fmt](cast(TextIO, fh), info)
            count, exported = await _write(staff, writer, query, fmt != "csv", progress)
        # The audit comes before the file appears: an export nobody could account for never exists.
        await _audit(staff, fmt, sel, count, exported)
    return count


async def _query(staff: StaffContext, sel: Selection) -> ReportQuery:
    """The selection as a query; a named reference (or series) must exist."""
    query = sel.query(staff.zone)
    for ref in (sel.reference, sel.series):
        if ref is None:
            continue
        async with staff.db.transaction() as s:
            if not await staff.store.reference_exists(s, ref):
                raise StaffError(f"no report has the reference {ref}")
            if ref == sel.series:
                query = replace(query, references=(await series.series_in(s)).get(ref, (ref,)))
    return query


async def _write(
    staff: StaffContext, writer: Writer, query: ReportQuery, transcripts: bool, progress: Progressed | None
) -> tuple[int, list[str]]:
    """(how many, their references for the audit; empty past AUDIT_REFERENCES_MAX)."""
    total = await count_reports(staff.db, query) if progress is not None else 0
    count = 0
    exported: list[str] = []  # for the audit trail: `reportbot audit --reference` finds this export
    writer.begin()
    async for record in iter_reports(staff.db, staff.cipher, query, transcripts=transcripts):
        writer.write(record)
        count += 1
        if count <= AUDIT_REFERENCES_MAX:
            exported.append(record["reference"])
        else:
            exported.clear()
        if progress is not None:
            progress(count, max(total, count))
    writer.end(count)
    return count, exported


async def _audit(staff: StaffContext, fmt: str, sel: Selection, count: int, exported: list[str]) -> None:
    too_many = "" if count <= AUDIT_REFERENCES_MAX else "; too many to list, see the selection"
    async with staff.db.transaction() as s:
        await staff.store.audit(
            s,
            actor=staff.who,
            action="export",
            reference=sel.reference,
            count=count,
            detail=f"format={fmt}; {sel.describe()}{too_many}"[:500],
            references=exported,
        )


def _check_target(out: Path) -> None:
    if out.is_dir():
        raise StaffError(f"--out: {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise StaffError(f"--out: the folder {out.parent} does not exist")


@contextmanager
def _private_file(out: Path, encoding: str | None) -> Iterator[IO[Any]]:
    """A new file beside `out` (text, or bytes when `encoding` is None), readable by its owner only,
    renamed over `out` when the block completes and removed, leaving nothing behind, when it does not."""
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.fchmod(fd, 0o600)
    newline = "" if encoding == "utf-8-sig" else "\n"
    fh: IO[Any] = (
        os.fdopen(fd, "wb") if encoding is None else os.fdopen(fd, "w", encoding=encoding, newline=newline)
    )
    try:
        yield fh  # the caller may close it first, to do something once it is complete on disk
        fh.close()
        os.replace(name, out)
    except BaseException:
        fh.close()
        Path(name).unlink(missing_ok=True)
        raise
    os.chmod(out, 0o600)


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        required=True,
        choices=FORMATS,
        help="jsonl, csv, html, or zip (jsonl with the files people sent)",
    )
    parser.add_argument("--out", required=True, metavar="PATH", help="file to write (owner-only)")
    day_options(parser)
    parser.add_argument("--partner", metavar="ID", help="only reports the reporter agreed to share with ID")
    parser.add_argument("--reference", metavar="REF", help="only this report")
    parser.add_argument("--series", metavar="REF", help="every report of REF's series, oldest first")
    lang_option(parser)


async def run(args: argparse.Namespace, config: Config) -> int:
    labeller(args.lang)  # an unknown --lang is refused before anything is opened
    async with opened(config) as staff:
        sel = selection(
            config,
            since=args.since,
            until=args.until,
            partner=args.partner,
            reference=args.reference,
            series=args.series,
        )
        out = Path(args.out)
        with undecryptable_refused():
            count = await _with_progress(staff, args.format, out, sel, args.lang)
    noun = "report" if count == 1 else "reports"
    print(f"reportbot export: wrote {count} {noun} to {out} ({args.format}, readable by you only)")
    return 0


async def _with_progress(
    staff: StaffContext, fmt: str, out: Path, sel: Selection, lang: str | None = None
) -> int:
    """In a terminal, a progress bar on stderr; piped or from cron, nothing until the end."""
    console = Console(stderr=True)
    if not console.is_terminal:
        return await export_reports(staff, fmt, out, sel, lang=lang)
    columns = (TextColumn("exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("export", total=None)

        def advance(done: int, total: int) -> None:
            if done % 100 == 0 or done == total:
                bar.update(task, completed=done, total=total)

        return await export_reports(staff, fmt, out, sel, progress=advance, lang=lang)


COMMAND = Command(
    "export",
    "write decrypted reports to a file (jsonl, csv, html, or zip with evidence files)",
    run,
    options=_options,
    order=110,
)
