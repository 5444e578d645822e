"""Export writers: one report record in, one line, row or page section out, written as it comes.

Each writer gets the records of storage.export one at a time and writes them straight to the open file,
keeping nothing, so an export of any size runs in flat memory. The words here are for staff and for
the partner organisations they send exports to, not for reporters: they live in code, while the option
labels a reporter chose from are read from the message catalog (what the person actually saw).
"""

from __future__ import annotations

import csv
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol, TextIO

FORMATS = ("jsonl", "csv", "html")

# Cells that a spreadsheet would run as a formula (OWASP "CSV injection"): =, +, -, @, tab, return,
# and their full-width forms (Excel reads a full-width equals sign as one in some locales). Checked
# after any leading white space too: some importers trim it before deciding what a cell is.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


@dataclass(frozen=True)
class ExportInfo:
    """What the export is (shown in the HTML header; never in jsonl or csv)."""

    service: str
    operator: str
    generated_at: datetime
    filters: str  # e.g. "partner police, 2026-01-01 to 2026-03-31", or "all reports"
    zone: tzinfo
    partner_names: Mapping[str, str] = field(default_factory=dict)
    label: Callable[[str], str] = lambda code: code


class Writer(Protocol):
    """Writes records to an open text file as they arrive."""

    def begin(self) -> None: ...

    def write(self, record: Mapping[str, Any]) -> None: ...

    def end(self, count: int) -> None: ...


def encoding_for(fmt: str) -> str:
    """The file encoding: CSV carries a byte-order mark so that Excel reads it as UTF-8."""
    return "utf-8-sig" if fmt == "csv" else "utf-8"


def writer_for(fmt: str, out: TextIO, info: ExportInfo) -> Writer:
    """The writer for one of FORMATS."""
    if fmt == "jsonl":
        return JsonLinesWriter(out)
    if fmt == "csv":
        return CsvWriter(out)
    if fmt == "html":
        return HtmlWriter(out, info)
    raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


# -- jsonl -----------------------------------------------------------------------------------------


class JsonLinesWriter:
    """One JSON object per line, every field, transcript included."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def begin(self) -> None:
        return None

    def write(self, record: Mapping[str, Any]) -> None:
        self.out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")

    def end(self, count: int) -> None:
        return None


# -- csv -------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "reference",
    "submitted_at",
    "status",
    "status_changed_at",
    "channel",
    "role",
    "someone_else_knows",
    "incident_types",
    "motivations",
    "occurred_on",
    "occurred_at_text",
    "location_text",
    "latitude",
    "longitude",
    "description",
    "repeat",
    "offender",
    "injuries",
    "witnesses",
    "evidence",
    "support_requested",
    "anonymous",
    "contact_name",
    "contact_phone",
    "contact_email",
    "contact_in_chat",
    "contact_safe_times",
    "contact_notes",
    "share_with",
    "staff_notes",
)


def neutralise(value: str) -> str:
    """Make a text cell inert in a spreadsheet: a leading quote stops =, +, - and @ from running."""
    return (
        "'" + value if value.startswith(FORMULA_START) or value.lstrip().startswith(FORMULA_START) else value
    )


def _cell(value: Any) -> str | float | int:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value  # numbers we produced ourselves (coordinates): a spreadsheet reads them as numbers
    return neutralise(str(value))


def csv_row(record: Mapping[str, Any]) -> dict[str, str | float | int]:
    """One report flattened for a spreadsheet: lists joined with "; ", no transcript."""
    location = record.get("location") or {}
    contact = record.get("contact") or {}
    evidence = [
        f"{item.get('content_type') or 'file'}: {item.get('ref')}" for item in record.get("evidence") or []
    ]
    notes = [
        " ".join(str(part) for part in (note.get("at"), note.get("status"), note.get("text")) if part)
        for note in record.get("staff_notes") or []
    ]
    flat: dict[str, Any] = {
        **{key: record.get(key) for key in CSV_COLUMNS if key in record},
        "incident_types": "; ".join(record.get("incident_types") or []),
        "motivations": "; ".join(record.get("motivations") or []),
        "location_text": location.get("text"),
        "latitude": location.get("latitude"),
        "longitude": location.get("longitude"),
        "evidence": "; ".join(evidence),
        "share_with": "; ".join(record.get("share_with") or []),
        "staff_notes": " | ".join(notes),
        "contact_name": contact.get("name"),
        "contact_phone": contact.get("phone"),
        "contact_email": contact.get("email"),
        "contact_in_chat": contact.get("in_chat") if contact else None,
        "contact_safe_times": contact.get("safe_times"),
        "contact_notes": contact.get("notes"),
    }
    return {key: _cell(flat.get(key)) for key in CSV_COLUMNS}


class CsvWriter:
    """One row per report; opens cleanly in Excel (the file is written as UTF-8 with a BOM)."""

    def __init__(self, out: TextIO) -> None:
        self.writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, dialect="excel")

    def begin(self) -> None:
        self.writer.writeheader()

    def write(self, record: Mapping[str, Any]) -> None:
        self.writer.writerow(csv_row(record))

    def end(self, count: int) -> None:
        return None


# -- html ------------------------------------------------------------------------------------------

STYLE = """
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d9dce1; --person: #eef1f5; --bot: #e3f0ff;
        --staff: #e2f5e6; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 60rem; padding: 1.5rem; }
header.export { border-bottom: 2px solid var(--ink); margin-bottom: 1.5rem; }
header.export h1 { margin: 0 0 .25rem; font-size: 1.5rem; }
.muted { color: var(--muted); }
.warning { background: #fff4e5; border: 1px solid #f0c36d; padding: .5rem .75rem; border-radius: 4px; }
article.report { border-top: 1px solid var(--line); padding-top: 1rem; margin-top: 2rem; }
article.report h2 { margin: 0; font-size: 1.3rem; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: .8rem;
         border: 1px solid var(--line); vertical-align: middle; }
.status-new { background: #fff4e5; } .status-in-progress { background: #e3f0ff; }
.status-closed { background: #eeeeee; }
table.summary { border-collapse: collapse; width: 100%; margin: .75rem 0 1rem; }
table.summary th { text-align: left; vertical-align: top; width: 14rem; padding: .3rem .75rem .3rem 0;
                   color: var(--muted); font-weight: 600; }
table.summary td { padding: .3rem 0; white-space: pre-wrap; }
table.summary tr + tr { border-top: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.25rem 0 .5rem; }
ol.chat { list-style: none; padding: 0; margin: 0; }
ol.chat li { display: flex; flex-direction: column; margin: .4rem 0; }
ol.chat .bubble { max-width: 80%; padding: .45rem .7rem; border-radius: .8rem; white-space: pre-wrap;
                  overflow-wrap: anywhere; }
ol.chat .meta { font-size: .75rem; color: var(--muted); margin: 0 .4rem .1rem; }
ol.chat li.person { align-items: flex-start; }
ol.chat li.person .bubble { background: var(--person); border-bottom-left-radius: .2rem; }
ol.chat li.bot, ol.chat li.staff { align-items: flex-end; }
ol.chat li.bot .bubble { background: var(--bot); border-bottom-right-radius: .2rem; }
ol.chat li.staff .bubble { background: var(--staff); border: 1px solid #9ccfa6;
                           border-bottom-right-radius: .2rem; }
ol.chat li.day { align-items: center; font-size: .8rem; color: var(--muted); margin: .8rem 0 .2rem; }
footer.export { margin-top: 2rem; border-top: 2px solid var(--ink); padding-top: .5rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  article.report { break-before: page; border-top: none; margin-top: 0; }
  ol.chat li { break-inside: avoid; }
  .bubble { border: 1px solid var(--line); }
}
"""

ROLE = {
    "victim": "The person it happened to",
    "witness": "Someone who saw it",
    "someone_else": "Someone reporting for another person",
    "organisation": "An organisation",
}
REPEAT = {"first": "First time", "before": "Has happened before", "ongoing": "Keeps happening"}
CHANNEL = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": "Web chat", "console": "Console (local)"}
AUTHOR = {"person": "Reporter", "bot": "Bot", "staff": "Staff"}
# The flow stores a few follow-up answers as `key=code` after the person's words (flows/report.py).
FACTS = {
    "known": "Knows who they are",
    "recognise": "Would recognise them",
    "hurt": "Anyone hurt",
    "needs_help_now": "Needed a doctor or ambulance then",
    "property_damaged": "Property damaged",
}
FACT = re.compile(r"^(?P<key>[a-z_]+)=(?P<code>[a-z_]+)$")


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _local(iso: str | None, zone: tzinfo, fmt: str = "%d %b %Y, %H:%M") -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(zone).strftime(fmt)


def facts(text: str | None, label: Callable[[str], str]) -> str:
    """ "Tall man; known=no" -> "Tall man" and "Knows who they are: No" on separate lines."""
    if not text:
        return ""
    lines = []
    for part in text.split("; "):
        found = FACT.match(part)
        if found and found["key"] in FACTS:
            lines.append(f"{FACTS[found['key']]}: {label(found['code'])}")
        else:
            lines.append(part)
    return "\n".join(lines)


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("Yes" if value else "No")


class HtmlWriter:
    """One self-contained, printable page: a summary of each report and its transcript as a chat."""

    def __init__(self, out: TextIO, info: ExportInfo) -> None:
        self.out = out
        self.info = info

    def begin(self) -> None:
        info = self.info
        title = f"{info.service}: reports"
        generated = info.generated_at.astimezone(info.zone).strftime("%d %B %Y, %H:%M %Z")
        self.out.write(
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            # No external assets, no scripts: the page must open offline and load nothing from anywhere.
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            '<header class="export">\n'
            f"<h1>{_e(title)}</h1>\n"
            f'<p class="muted">Exported {_e(generated)} from the service run by {_e(info.operator)}. '
            f"Selection: {_e(info.filters)}.</p>\n"
            '<p class="warning">Confidential. This page holds what people reported, in their own words, '
            "and may identify them. Keep it as your organisation keeps case records, and do not pass it on "
            "beyond what the reporter agreed to.</p>\n"
            '<p class="muted">Each report starts with a summary, then the whole conversation: the '
            "reporter's messages on the left, the bot's questions and any staff replies on the right.</p>\n"
            "</header>\n"
        )

    def write(self, record: Mapping[str, Any]) -> None:
        ref = str(record.get("reference"))
        status = str(record.get("status") or "new")
        parts = [
            f'<article class="report" id="{_e(ref)}">\n',
            f'<h2>{_e(ref)} <span class="badge status-{_e(status)}">{_e(status.replace("-", " "))}</span></h2>\n',
            f'<table class="summary">\n{self._summary(record)}</table>\n',
            f"<h3>Conversation ({len(record.get('transcript') or [])} messages)</h3>\n",
            self._chat(ref, record.get("transcript") or []),
            "</article>\n",
        ]
        self.out.write("".join(parts))

    def end(self, count: int) -> None:
        noun = "report" if count == 1 else "reports"
        empty = "<p>No reports matched this selection.</p>\n" if count == 0 else ""
        self.out.write(
            f'{empty}<footer class="export"><p class="muted">{count} {noun}. End of export.</p></footer>\n'
            "</body>\n</html>\n"
        )

    def _labels(self, codes: Iterable[str]) -> str:
        return ", ".join(self.info.label(code) for code in codes)

    def _summary(self, r: Mapping[str, Any]) -> str:
        info = self.info
        location = r.get("location") or {}
        where = location.get("text") or ""
        if location.get("latitude") is not None and location.get("longitude") is not None:
            coords = f"{location['latitude']:.5f}, {location['longitude']:.5f} (shared location)"
            where = f"{where}\n{coords}" if where else coords
        when = r.get("occurred_on") or ""
        if when:
            when = datetime.fromisoformat(str(when)).strftime("%A %d %B %Y")
        if r.get("occurred_at_text"):
            when = f"{when}\nIn their words: {r['occurred_at_text']}" if when else str(r["occurred_at_text"])
        evidence = [
            f"{item.get('content_type') or 'file'}: {item.get('ref')}" for item in r.get("evidence") or []
        ]
        share = [info.partner_names.get(p, p) for p in r.get("share_with") or []]
        rows: list[tuple[str, str]] = [
            ("Submitted", _local(r.get("submitted_at"), info.zone)),
            ("Status", str(r.get("status") or "new").replace("-", " ")),
            ("Reported through", CHANNEL.get(str(r.get("channel")), str(r.get("channel")))),
            ("Reported by", ROLE.get(str(r.get("role")), str(r.get("role") or "Not said"))),
        ]
        if r.get("someone_else_knows"):
            rows.append(("Does the person know?", info.label(str(r["someone_else_knows"]))))
        rows += [
            ("What happened", self._labels(r.get("incident_types") or []) or "Not said"),
            ("Why they think it happened", self._labels(r.get("motivations") or []) or "Not said"),
            ("When", when or "Not said"),
            ("Where", where or "Not said"),
            ("In their own words", r.get("description") or "Not said"),
            ("Happened before?", REPEAT.get(str(r.get("repeat")), str(r.get("repeat") or "Not said"))),
            ("Who did it", facts(r.get("offender"), info.label) or "Not said"),
            ("Harm", facts(r.get("injuries"), info.label) or "Not said"),
            ("Did anyone else see it", info.label(str(r["witnesses"])) if r.get("witnesses") else "Not said"),
            ("Evidence sent", "\n".join(evidence) or "None"),
            ("Wants support", _yes_no(r.get("support_requested")) or "Not said"),
            ("Contact", self._contact(r)),
            ("May be shared with", ", ".join(share) or "Nobody (record only)"),
        ]
        for note in r.get("staff_notes") or []:
            rows.append(
                (
                    "Staff note",
                    f"{_local(note.get('at'), info.zone)} ({note.get('status') or ''})\n{note.get('text')}",
                )
            )
        return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>\n" for k, v in rows)

    @staticmethod
    def _contact(r: Mapping[str, Any]) -> str:
        c = r.get("contact")
        if r.get("anonymous") or not c:
            return "Anonymous: the reporter asked not to be contacted"
        lines = []
        if c.get("in_chat"):
            lines.append("Reply in the chat they used (reportbot reply)")
        for label, key in (
            ("Name", "name"),
            ("Phone", "phone"),
            ("Email", "email"),
            ("Safe times", "safe_times"),
            ("Notes", "notes"),
        ):
            if c.get(key):
                lines.append(f"{label}: {c[key]}")
        return "\n".join(lines) or "Asked to be contacted"

    def _chat(self, ref: str, transcript: Sequence[Mapping[str, Any]]) -> str:
        zone = self.info.zone
        out = ['<ol class="chat">\n']
        day = None
        for number, line in enumerate(transcript, start=1):
            at = line.get("at")
            this_day = _local(at, zone, "%A %d %B %Y")
            if this_day and this_day != day:
                out.append(f'<li class="day">{_e(this_day)}</li>\n')
                day = this_day
            author = str(line.get("author") or ("person" if line.get("direction") == "in" else "bot"))
            who = AUTHOR.get(author, author)
            out.append(
                f'<li class="{_e(author)}" id="{_e(ref)}-{number}"><span class="meta">{_e(who)}, {_e(_local(at, zone, "%H:%M"))}'
                f'</span><div class="bubble">{_e(line.get("text") or "")}</div></li>\n'
            )
        if not transcript:
            out.append('<li class="day">No messages kept for this report.</li>\n')
        out.append("</ol>\n")
        return "".join(out)


def describe_filters(since: str | None, until: str | None, partner: str | None, reference: str | None) -> str:
    """The selection in words, for the HTML header and the audit detail."""
    parts = []
    if reference:
        parts.append(f"report {reference}")
    if partner:
        parts.append(f"shared with {partner}")
    if since and until:
        parts.append(f"submitted {since} to {until}")
    elif since:
        parts.append(f"submitted from {since}")
    elif until:
        parts.append(f"submitted up to {until}")
    return ", ".join(parts) or "all reports"
