"""Staff commands: export reports, reply to a reporter, review a report, count reports.

Each command reads or changes reports through storage/ and leaves an audit event (who, what, which
report, how many; never content). A refusal raises `StaffError` with the reason in plain words and
changes nothing. Messages to reporters go through the outbox and the channel's sender, like every
other message the service sends.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlmodel import col

from bot.channels import ChannelUnavailable, followup_refusal, sender_for
from bot.config import Config
from bot.exports import FORMATS, ExportInfo, describe_filters, encoding_for, writer_for
from bot.outbox import Outbox, Sender
from bot.render import to_dict
from flows import catalog
from flows.references import EXAMPLE, parse_reference
from flows.types import Outbound
from storage import followup
from storage.crypto import Cipher, DecryptError
from storage.db import Database
from storage.export import ReportQuery, count_reports, iter_reports
from storage.models import OutboxMessage
from storage.stats import Counts, count_by
from storage.store import Line, Store

# An export's audit event lists the references it holds, up to this many; a bigger export is recorded by
# its selection (dates, partner) instead, so that memory stays flat however many reports go out.
AUDIT_REFERENCES_MAX = 10_000


class StaffError(Exception):
    """A staff command refused or failed; str() is one line saying why. Nothing was changed."""


def actor() -> str:
    """Who is running the command, for the audit trail: $REPORTBOT_ACTOR, $SUDO_USER, else the login."""
    name = (os.environ.get("REPORTBOT_ACTOR") or os.environ.get("SUDO_USER") or "").strip()
    if name:
        return name[:64]
    try:
        return getpass.getuser()[:64]
    except (KeyError, OSError):
        return "unknown"


def code_label(code: str) -> str:
    """The label the reporter saw for an option code (from the catalog), else the code in words."""
    key = f"option.{code}"
    if catalog.has("en", key):
        return catalog.text("en", key)
    return code.replace("_", " ").replace("-", " ").capitalize()


def normalise_reference(text: str) -> str:
    """Any form the chat accepts (`hc7k3q9xpd`, `HC 7K3Q 9XPD`) -> `HC-7K3Q-9XPD`; else StaffError."""
    ref = parse_reference(text)
    if ref is None:
        raise StaffError(
            f"{text!r} is not a report reference (they look like {EXAMPLE} and never use 0, O, 1, I or L)"
        )
    return ref


def parse_day(text: str, option: str) -> date:
    """A YYYY-MM-DD date, or StaffError naming the option."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").date()
    except ValueError:
        raise StaffError(f"{option}: {text!r} is not a date like 2026-03-31") from None


@dataclass(frozen=True)
class Selection:
    """The reports a staff command works on, as given on the command line."""

    since: date | None = None
    until: date | None = None
    partner: str | None = None
    reference: str | None = None

    def query(self, zone: ZoneInfo) -> ReportQuery:
        """Dates are inclusive calendar days in the service's time zone."""
        since = datetime.combine(self.since, time(), zone).astimezone(UTC) if self.since else None
        before = (
            datetime.combine(self.until + timedelta(days=1), time(), zone).astimezone(UTC)
            if self.until
            else None
        )
        return ReportQuery(since=since, before=before, partner=self.partner, reference=self.reference)

    def describe(self) -> str:
        return describe_filters(
            self.since.isoformat() if self.since else None,
            self.until.isoformat() if self.until else None,
            self.partner,
            self.reference,
        )


def selection(
    config: Config,
    *,
    since: str | None = None,
    until: str | None = None,
    partner: str | None = None,
    reference: str | None = None,
) -> Selection:
    """Check the command-line filters against the configuration; StaffError names a bad one."""
    first = parse_day(since, "--since") if since else None
    last = parse_day(until, "--until") if until else None
    if first and last and first > last:
        raise StaffError(f"--since {first} is after --until {last}")
    if partner is not None:
        ids = [p.id for p in config.partners]
        if partner not in ids:
            known = ", ".join(ids) if ids else "none are configured"
            raise StaffError(f"--partner: {partner!r} is not a configured partner id ({known})")
    ref = normalise_reference(reference) if reference else None
    return Selection(since=first, until=last, partner=partner, reference=ref)


@dataclass
class ReplyResult:
    """What happened to a staff reply, as far as this command could see it."""

    reference: str
    state: str  # "sent" | "queued" (the outbox will deliver it) | "failed" (it never will)
    reason: str | None = None  # why it is queued or failed: a code such as forbidden, retry_after
    waiting_before: int = 0  # earlier messages to the same chat that go first

    @property
    def delivered(self) -> bool:
        return self.state == "sent"

    def describe(self) -> str:
        """One line for the person at the terminal."""
        ref = self.reference
        if self.state == "sent":
            return f"reportbot reply: sent to the reporter of {ref}"
        if self.state == "failed":
            return (
                f"reportbot reply: NOT delivered to the reporter of {ref}: the channel refused it "
                f"for good ({self.reason}); it will not be retried"
            )
        if self.reason == IN_FLIGHT:
            why = "the running server is sending this chat's messages now and has not confirmed them yet"
        elif self.waiting_before:
            why = f"{self.waiting_before} earlier message(s) to the same chat are waiting to go first"
        else:
            why = f"the channel did not take it yet ({self.reason or 'not tried yet'})"
        return f"reportbot reply: queued for the reporter of {ref}; {why}; it will be retried"


IN_FLIGHT = "in_flight"
SETTLE_WITHIN = 20.0  # seconds to wait for another process that is sending the reply to confirm it


class Staff:
    """The staff commands of one deployment."""

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        who: str | None = None,
        senders: Callable[[str], Sender] | None = None,
    ) -> None:
        self.config = config
        self.db = db
        # How to reach each channel; tests give the same senders over a fake network edge.
        self.senders = senders or (lambda channel: sender_for(config, channel))
        self.cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
        self.store = Store(self.cipher)
        self.zone = ZoneInfo(config.service.timezone)
        self.who = who or actor()
        self.settle_within = SETTLE_WITHIN

    # -- export ------------------------------------------------------------------------------------

    async def export(
        self,
        fmt: str,
        out: Path,
        sel: Selection,
        *,
        progress: Callable[[int, int], None] | None = None,
        now: datetime | None = None,
    ) -> int:
        """Write the selected reports to `out` (owner-only), then audit. Returns how many."""
        if fmt not in FORMATS:
            raise StaffError(f"--format: use one of {', '.join(FORMATS)}")
        _check_target(out)
        query = sel.query(self.zone)
        if sel.reference is not None:
            async with self.db.transaction() as s:
                if not await self.store.reference_exists(s, sel.reference):
                    raise StaffError(f"no report has the reference {sel.reference}")
        total = await count_reports(self.db, query) if progress is not None else 0
        info = ExportInfo(
            service=self.config.service.name,
            operator=self.config.service.operator,
            generated_at=now or datetime.now(UTC),
            filters=sel.describe(),
            zone=self.zone,
            partner_names={p.id: p.name for p in self.config.partners},
            label=code_label,
        )
        fh, tmp = _private_temp(out, encoding_for(fmt))
        count = 0
        exported: list[str] = []  # for the audit trail: `reportbot audit --reference` finds this export
        try:
            with fh:
                writer = writer_for(fmt, fh, info)
                writer.begin()
                async for record in iter_reports(self.db, self.cipher, query, transcripts=fmt != "csv"):
                    writer.write(record)
                    count += 1
                    if count <= AUDIT_REFERENCES_MAX:
                        exported.append(record["reference"])
                    else:
                        exported.clear()
                    if progress is not None:
                        progress(count, max(total, count))
                writer.end(count)
            # The audit comes before the file appears: an export nobody could account for never exists.
            async with self.db.transaction() as s:
                await self.store.audit(
                    s,
                    actor=self.who,
                    action="export",
                    reference=sel.reference,
                    count=count,
                    detail=(
                        f"format={fmt}; {sel.describe()}"
                        + ("" if count <= AUDIT_REFERENCES_MAX else "; too many to list, see the selection")
                    )[:500],
                    references=exported,
                )
            os.replace(tmp, out)
        except BaseException:
            _discard(tmp)
            raise
        os.chmod(out, 0o600)
        return count

    # -- reply -------------------------------------------------------------------------------------

    async def reply(self, reference: str, text: str, *, now: datetime | None = None) -> ReplyResult:
        """Send staff's words to the reporter's chat, keep them in the transcript, audit, deliver."""
        ref = normalise_reference(reference)
        words = text.strip()
        if not words:
            raise StaffError("the message is empty; nothing was sent")
        now = now or datetime.now(UTC)
        async with self.db.transaction() as s:
            report = await followup.lock_report(s, ref)
            if report is None or report.id is None:
                raise StaffError(f"no report has the reference {ref}")
            if report.anonymous:
                raise StaffError(
                    f"{ref} is anonymous: the reporter asked not to be contacted, and no way back to "
                    "them is kept. Nothing was sent."
                )
            address = followup.reply_address(self.cipher, report)
            if address is None or report.chat_key is None:
                raise StaffError(
                    f"{ref}: the reporter did not ask to be contacted in the chat. Use the contact "
                    "details in the export (phone or email) instead. Nothing was sent."
                )
            last = await followup.last_inbound(s, report)
            refusal = followup_refusal(self.config, report.channel, last, now)
            if refusal is not None:
                raise StaffError(f"{ref}: {refusal}. Nothing was sent.")
            try:
                sender = self.senders(report.channel)
            except ChannelUnavailable as exc:
                raise StaffError(f"{ref}: {exc}. Nothing was sent.") from None
            message = Outbound(
                text=catalog.text("en", "staff.reply", reference=ref, reply=words), step="staff"
            )
            [msg_id] = await self.store.enqueue(
                s,
                channel=report.channel,
                chat_key=report.chat_key,
                address=address,
                messages=[to_dict(message)],
                report_id=report.id,
                at=now,
            )
            await self.store.append_transcript(s, [Line("out", "staff", words, now)], report_id=report.id)
            await self.store.audit(s, actor=self.who, action="reply", reference=ref, count=1)
        return await self._deliver(sender, ref, msg_id, report.chat_key)

    async def _deliver(self, sender: Sender, ref: str, msg_id: int, chat_key: str) -> ReplyResult:
        """Deliver this chat's messages up to the reply, then say what happened to it. While another
        process (the running server) is sending a message of this chat, wait for it a little, up to
        `settle_within` seconds, and try again: a reply it sends is reported as sent."""
        outbox = Outbox(self.db, self.store)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_within
        calm = 0  # looks in a row at nothing moving: the server may finish between our try and our look
        while True:
            # Only this chat: another chat's messages are the server's to send (it can clear a chat).
            await outbox.drain(sender, chat_key=chat_key)
            now = datetime.now(UTC)
            async with self.db.transaction() as s:
                row = (
                    await s.execute(select(OutboxMessage).where(col(OutboxMessage.id) == msg_id))
                ).scalar_one_or_none()
                before = await s.execute(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        col(OutboxMessage.chat_key) == chat_key,
                        col(OutboxMessage.id) < msg_id,
                        col(OutboxMessage.sent_at).is_(None),
                        col(OutboxMessage.failed_at).is_(None),
                    )
                )
                in_flight = await s.execute(  # claimed by someone, no result yet (see steps.claim_one)
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        col(OutboxMessage.chat_key) == chat_key,
                        col(OutboxMessage.id) <= msg_id,
                        col(OutboxMessage.sent_at).is_(None),
                        col(OutboxMessage.failed_at).is_(None),
                        col(OutboxMessage.attempts) > 0,
                        col(OutboxMessage.last_error).is_(None),
                        col(OutboxMessage.next_attempt_at) > now,
                    )
                )
                waiting_before, moving = int(before.scalar() or 0), int(in_flight.scalar() or 0)
            if row is None or row.sent_at is not None:
                return ReplyResult(ref, "sent")  # (a staff reply keeps its row: it belongs to the report)
            if row.failed_at is not None:
                return ReplyResult(ref, "failed", row.last_error)
            calm = 0 if moving else calm + 1
            if calm >= 2 or loop.time() >= deadline:
                return ReplyResult(ref, "queued", IN_FLIGHT if moving else row.last_error, waiting_before)
            if moving:
                await asyncio.sleep(0.05)

    # -- review ------------------------------------------------------------------------------------

    async def review(
        self, reference: str, status: str, note: str | None = None, *, now: datetime | None = None
    ) -> str:
        """Set a report's status (new, in-progress, closed), with an optional note. Returns the old one."""
        ref = normalise_reference(reference)
        if status not in followup.STATUSES:
            raise StaffError(f"--status: use one of {', '.join(followup.STATUSES)}")
        note = note.strip() if note else None
        now = now or datetime.now(UTC)
        async with self.db.transaction() as s:
            report = await followup.lock_report(s, ref)
            if report is None:
                raise StaffError(f"no report has the reference {ref}")
            before = report.status
            await followup.review(s, self.cipher, report, status=status, note=note, at=now)
            await self.store.audit(
                s,
                actor=self.who,
                action="review",
                reference=ref,
                detail=f"status {before} -> {status}" + ("; note added" if note else ""),
            )
        return before

    # -- stats -------------------------------------------------------------------------------------

    async def stats(self, sel: Selection) -> Counts:
        """Counts of the selected reports (codes only, never free text)."""
        return await count_by(self.db, sel.query(self.zone), self.zone)


def _check_target(out: Path) -> None:
    if out.is_dir():
        raise StaffError(f"--out: {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise StaffError(f"--out: the folder {out.parent} does not exist")


def _discard(name: str) -> None:
    Path(name).unlink(missing_ok=True)


def _private_temp(out: Path, encoding: str) -> tuple[TextIO, str]:
    """A new file beside `out`, readable by its owner only, to be renamed over `out` when complete."""
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.fchmod(fd, 0o600)
    newline = "" if encoding == "utf-8-sig" else "\n"
    return os.fdopen(fd, "w", encoding=encoding, newline=newline), name


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
    channel_names = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": "Web chat", "console": "Console"}
    return [
        ("By month", by_month),
        ("By motivation", [(label(k), n) for k, n in counts.by_motivation.most_common()]),
        ("By kind of incident", [(label(k), n) for k, n in counts.by_kind.most_common()]),
        ("By channel", [(channel_names.get(k, k), n) for k, n in counts.by_channel.most_common()]),
        ("By status", [(k.replace("-", " "), n) for k, n in counts.by_status.most_common()]),
    ]


# -- command line ------------------------------------------------------------------------------------

COMMANDS = ("export", "reply", "review", "stats")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the staff commands to `reportbot`'s sub-commands."""
    export = sub.add_parser(
        "export", parents=[common], help="write decrypted reports to a file (jsonl, csv or html)"
    )
    export.add_argument("--format", required=True, choices=FORMATS, help="jsonl, csv or html")
    export.add_argument("--out", required=True, metavar="PATH", help="file to write (owner-only)")
    _selection_options(export)
    export.add_argument("--partner", metavar="ID", help="only reports the reporter agreed to share with ID")
    export.add_argument("--reference", metavar="REF", help="only this report")

    reply = sub.add_parser(
        "reply", parents=[common], help="send a message to a reporter who asked to be contacted in the chat"
    )
    reply.add_argument("reference", metavar="REF")
    reply.add_argument(
        "text",
        metavar="TEXT",
        help="your message, in quotes; - reads it from stdin (keeps it out of ps and history)",
    )

    review = sub.add_parser("review", parents=[common], help="set a report's status")
    review.add_argument("reference", metavar="REF")
    review.add_argument("--status", required=True, choices=followup.STATUSES)
    review.add_argument("--note", metavar="TEXT", help="a note for colleagues (stored encrypted)")

    stats = sub.add_parser(
        "stats", parents=[common], help="count reports by month, motivation, kind and channel"
    )
    _selection_options(stats)
    stats.add_argument("--chart", metavar="PATH.png", help="also draw the counts as a bar chart")


def _selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", metavar="YYYY-MM-DD", help="submitted on or after this day")
    parser.add_argument("--until", metavar="YYYY-MM-DD", help="submitted on or before this day")


def run(args: argparse.Namespace, config: Config) -> int:
    """Run one staff command; a refusal prints one line and exits 1."""
    from storage.schema import SchemaError

    try:
        return asyncio.run(_run(args, config))
    except StaffError as exc:
        print(f"reportbot {args.command}: {exc}", file=sys.stderr)
        return 1
    except SchemaError as exc:
        print(f"reportbot: {exc}", file=sys.stderr)
        return 2
    except DecryptError:
        # Wrong or missing key, or a damaged row: say which key to check, never echo the value.
        print(
            f"reportbot {args.command}: a stored value could not be decrypted with any key in "
            "security.encryption_keys; nothing was written or sent",
            file=sys.stderr,
        )
        return 1


async def _run(args: argparse.Namespace, config: Config) -> int:
    from storage.schema import ensure_schema

    db = Database(config.database_url)
    try:
        # Local SQLite is brought up to date; PostgreSQL must have had `reportbot db upgrade`.
        await ensure_schema(db, auto_upgrade=db.is_sqlite)
        staff = Staff(config, db)
        if args.command == "export":
            return await _export(staff, args)
        if args.command == "reply":
            text = sys.stdin.read() if args.text == "-" else args.text
            result = await staff.reply(args.reference, text.strip())
            print(result.describe())
            return 1 if result.state == "failed" else 0
        if args.command == "review":
            before = await staff.review(args.reference, args.status, args.note)
            ref = normalise_reference(args.reference)
            print(f"reportbot review: {ref} is now {args.status} (was {before})")
            return 0
        if args.command == "stats":
            return await _stats(staff, args)
        raise AssertionError(f"unhandled command {args.command}")
    finally:
        await db.dispose()


async def _export(staff: Staff, args: argparse.Namespace) -> int:
    sel = selection(
        staff.config, since=args.since, until=args.until, partner=args.partner, reference=args.reference
    )
    out = Path(args.out)
    console = Console(stderr=True)
    if not console.is_terminal:
        count = await staff.export(args.format, out, sel)
    else:
        columns = (
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("export", total=None)

            def advance(done: int, total: int) -> None:
                if done % 100 == 0 or done == total:
                    bar.update(task, completed=done, total=total)

            count = await staff.export(args.format, out, sel, progress=advance)
    noun = "report" if count == 1 else "reports"
    print(f"reportbot export: wrote {count} {noun} to {out} ({args.format}, readable by you only)")
    return 0


async def _stats(staff: Staff, args: argparse.Namespace) -> int:
    sel = selection(staff.config, since=args.since, until=args.until)
    counts = await staff.stats(sel)
    sections = counts_table(counts)
    out = Console(highlight=False, soft_wrap=True)
    heading = f"{staff.config.service.name}: {counts.total} {'report' if counts.total == 1 else 'reports'}"
    out.print(f"{heading} ({sel.describe()})")
    for title, rows in sections:
        table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column("what")
        table.add_column("count", justify="right")
        for name, n in rows:
            table.add_row(str(name), str(n))
        if not rows:
            table.add_row("no reports", "0")
        out.print()
        out.print(table)
    if args.chart:
        from bot.charts import draw

        path = Path(args.chart)
        if not path.parent.is_dir():
            raise StaffError(f"--chart: the folder {path.parent} does not exist")
        draw(path, f"{heading} ({sel.describe()})", sections)
        print(f"reportbot stats: chart written to {path}", file=sys.stderr)
    return 0
