"""The HTML export: one self-contained, printable page, a summary of each report and its transcript as a chat.

It loads nothing from anywhere (no scripts, fonts or outside images; a Content-Security-Policy forbids it);
photos people sent are decrypted into the page itself as data: URIs. The words
here are for staff and partners, not for reporters; the option labels a reporter chose from come from the
message catalog through ExportInfo.label.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any, TextIO

from bot.staff.commands.export.answers import HARM, OFFENDER
from bot.staff.commands.export.writers import ExportInfo, evidence_lines, human_size, opened_evidence
from bot.staff.context import language_name

STYLE = """
:root { --ink: #1d1d1f; --muted: #5f6368; --line: #d9dce1; --person: #eef1f5; --bot: #e3f0ff;
        --staff: #e2f5e6; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 60rem; padding: 1.5rem; }
header.export { border-bottom: 2px solid var(--ink); margin-bottom: 1.5rem; }
header.export h1 { margin: 0 0 .25rem; font-size: 1.5rem; }
.muted { color: var(--muted); }
ul.evidence { list-style: none; padding: 0; }
ul.evidence figure { margin: .5rem 0; }
ul.evidence img { max-width: 100%; max-height: 30rem; border: 1px solid var(--line); }
ul.evidence figcaption, ul.evidence li { font-size: .85rem; color: var(--muted); overflow-wrap: anywhere; }
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
section.series { border: 2px solid var(--ink); border-radius: 6px; padding: .5rem 1rem 1rem; margin-top: 2rem; }
section.series > h2 { margin: .25rem 0; font-size: 1.35rem; }
ol.timeline { list-style: none; margin: .5rem 0 0; padding: 0 0 0 1rem; border-left: 3px solid var(--line); }
ol.timeline li { position: relative; margin: .5rem 0; padding-left: .5rem; }
ol.timeline li::before { content: ""; position: absolute; left: -1.45rem; top: .4rem; width: .7rem;
                         height: .7rem; border-radius: 50%; background: var(--ink); }
ol.timeline time { font-weight: 600; margin-right: .5rem; }
footer.export { margin-top: 2rem; border-top: 2px solid var(--ink); padding-top: .5rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  article.report { break-before: page; border-top: none; margin-top: 0; }
  ol.chat li { break-inside: avoid; }
  .bubble { border: 1px solid var(--line); }
}
"""

BY = {"chat": "In the chat", "phone": "Phone call", "text": "Text message only", "email": "Email"}
ROLE = {
    "victim": "The person it happened to",
    "witness": "Someone who saw it",
    "someone_else": "Someone reporting for another person",
    "organisation": "An organisation",
    "helper": "Someone helping another person to report",
}
HELPER_CONTACT = {
    "contact_person": "The person helped",
    "contact_helper": "The helper",
    "contact_nobody": "Nobody",
}
REPEAT = {"first": "First time", "before": "Has happened before", "ongoing": "Keeps happening"}
CHANNEL = {"telegram": "Telegram", "whatsapp": "WhatsApp", "web": "Web chat", "console": "Console (local)"}
AUTHOR = {"person": "Reporter", "bot": "Bot", "staff": "Staff"}
NOT_SAID = "Not said"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _local(iso: str | None, zone: tzinfo, fmt: str = "%d %b %Y, %H:%M") -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(zone).strftime(fmt)


def _when(r: Mapping[str, Any]) -> str:
    """The day we understood, then what the person said about when."""
    when = r.get("occurred_on") or ""
    if when:
        when = datetime.fromisoformat(str(when)).strftime("%A %d %B %Y")
    said = r.get("occurred_at_text")
    if said:
        when = f"{when}\nIn their words: {said}" if when else str(said)
    return str(when)


def _day(r: Mapping[str, Any]) -> str:
    when = r.get("occurred_on")
    return datetime.fromisoformat(str(when)).strftime("%d %b %Y") if when else "Date not said"


def _where(location: Mapping[str, Any]) -> str:
    """The place in their words, then any shared location."""
    where = location.get("text") or ""
    if location.get("latitude") is not None and location.get("longitude") is not None:
        coords = f"{location['latitude']:.5f}, {location['longitude']:.5f} (shared location)"
        where = f"{where}\n{coords}" if where else coords
    return str(where)


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("Yes" if value else "No")


class HtmlWriter:
    """One self-contained, printable page: a summary of each report and its transcript as a chat."""

    def __init__(self, out: TextIO, info: ExportInfo) -> None:
        self.out = out
        self.info = info
        # Reports of a series wait for the end, to be shown together under their timeline (a series is a
        # few reports: this holds only those, never the whole export).
        self.series: dict[str, list[Mapping[str, Any]]] = {}

    def begin(self) -> None:
        info = self.info
        title = f"{info.service}: reports"
        generated = info.generated_at.astimezone(info.zone).strftime("%d %B %Y, %H:%M %Z")
        self.out.write(
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            # No external assets, no scripts: the page must open offline and load nothing from anywhere.
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
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
        series = record.get("series") or []
        if series:
            self.series.setdefault(str(series[0]), []).append(record)
            return
        self.out.write(self._article(record))

    def _article(self, record: Mapping[str, Any]) -> str:
        ref = str(record.get("reference"))
        status = str(record.get("status") or "new")
        parts = [
            f'<article class="report" id="{_e(ref)}">\n',
            f'<h2>{_e(ref)} <span class="badge status-{_e(status)}">{_e(status.replace("-", " "))}</span></h2>\n',
            f'<table class="summary">\n{self._summary(record)}</table>\n',
            self._evidence(record),
            f"<h3>Conversation ({len(record.get('transcript') or [])} messages)</h3>\n",
            self._chat(ref, record.get("transcript") or []),
            "</article>\n",
        ]
        return "".join(parts)

    def _series(self, records: Sequence[Mapping[str, Any]]) -> str:
        """A series on one page: a timeline of its incidents (oldest first), then each report."""
        every = [str(ref) for ref in records[0].get("series") or []]
        shown = {str(r.get("reference")) for r in records}
        missing = [ref for ref in every if ref not in shown]
        lines = [self._moment(r) for r in records]
        note = (
            f'<p class="muted">Also in this series, not in this export: {_e(", ".join(missing))}.</p>\n'
            if missing
            else ""
        )
        return (
            f'<section class="series">\n<h2>Series of {len(every)} reports: {_e(", ".join(every))}</h2>\n'
            '<p class="muted">The same pattern of harassment, reported more than once. Oldest first.</p>\n'
            f'<ol class="timeline">\n{"".join(lines)}</ol>\n{note}'
            + "".join(self._article(r) for r in records)
            + "</section>\n"
        )

    def _moment(self, r: Mapping[str, Any]) -> str:
        """One incident of a series on its timeline: when, which report, what, where."""
        ref = str(r.get("reference"))
        what = self._labels(r.get("incident_types") or []) or NOT_SAID
        joined = f" (adds to {r['linked_to']})" if r.get("linked_to") else ""
        return (
            f'<li><time>{_e(_day(r))}</time><a href="#{_e(ref)}">{_e(ref)}</a>{_e(joined)}: '
            f"{_e(what)}. {_e(_where(r.get('location') or {}))}. "
            f'<span class="muted">Sent {_e(_local(r.get("submitted_at"), self.info.zone))}.</span></li>\n'
        )

    def _evidence(self, record: Mapping[str, Any]) -> str:
        """Images inline (decrypted into this owner-only page), every file with its type, size and hash."""
        items = list(opened_evidence(self.info.evidence, record))
        if not items:
            return ""
        parts = [
            f'<h3>Evidence ({len(items)} {"file" if len(items) == 1 else "files"})</h3>\n<ul class="evidence">\n'
        ]
        for entry, found in items:
            kind = str(entry.get("content_type") or "file")
            if found is None:
                why = (
                    entry.get("problem")
                    or "not downloaded; only the messaging app's reference was kept (older report)"
                )
                parts.append(f"<li>{_e(kind)}: {_e(why)}</li>\n")
                continue
            about = f"{kind}, {human_size(found.size)}, SHA-256 {found.sha256}"
            if kind.startswith("image/"):
                uri = f"data:{kind};base64,{base64.b64encode(found.data).decode('ascii')}"
                parts.append(
                    f'<li><figure><img src="{_e(uri)}" alt="Photo sent by the reporter">'
                    f"<figcaption>{_e(about)}</figcaption></figure></li>\n"
                )
            else:
                parts.append(f"<li>{_e(about)}</li>\n")
        parts.append("</ul>\n")
        return "".join(parts)

    def end(self, count: int) -> None:
        for records in self.series.values():
            self.out.write(self._series(records))
        self.series.clear()
        noun = "report" if count == 1 else "reports"
        empty = "<p>No reports matched this selection.</p>\n" if count == 0 else ""
        self.out.write(
            f'{empty}<footer class="export"><p class="muted">{count} {noun}. End of export.</p></footer>\n'
            "</body>\n</html>\n"
        )

    def _labels(self, codes: Iterable[str]) -> str:
        return ", ".join(self.info.label(code) for code in codes)

    def _summary(self, r: Mapping[str, Any]) -> str:
        rows = [*self._about(r), *self._incident(r), *self._follow_up(r)]
        return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>\n" for k, v in rows)

    def _about(self, r: Mapping[str, Any]) -> list[tuple[str, str]]:
        """When and how it was reported, and by whom."""
        info = self.info
        rows = [
            ("Submitted", _local(r.get("submitted_at"), info.zone)),
            ("Status", str(r.get("status") or "new").replace("-", " ")),
            ("Reported through", CHANNEL.get(str(r.get("channel")), str(r.get("channel")))),
            ("Language", language_name(r.get("language"))),
            ("Reported by", ROLE.get(str(r.get("role")), str(r.get("role") or NOT_SAID))),
        ]
        return rows + _who_else(r, info.label)

    def _incident(self, r: Mapping[str, Any]) -> list[tuple[str, str]]:
        """What happened, in the order the conversation asks it."""
        label = self.info.label
        witnesses = r.get("witnesses")
        rows = [
            ("What happened", self._labels(r.get("incident_types") or [])),
            ("Why they think it happened", self._labels(r.get("motivations") or [])),
            ("When", _when(r)),
            ("Where", _where(r.get("location") or {})),
            ("In their own words", r.get("description")),
            ("Happened before?", REPEAT.get(str(r.get("repeat")), r.get("repeat"))),
            ("Who did it", OFFENDER.lines(r.get("offender"), label)),
            ("Harm", HARM.lines(r.get("injuries"), label)),
            ("Did anyone else see it", label(str(witnesses)) if witnesses else None),
        ]
        return [(name, str(value or NOT_SAID)) for name, value in rows]

    def _follow_up(self, r: Mapping[str, Any]) -> list[tuple[str, str]]:
        """What was sent with it, what the reporter asked for, and staff notes."""
        info = self.info
        share = [info.partner_names.get(p, p) for p in r.get("share_with") or []]
        rows = [
            ("Evidence sent", "\n".join(evidence_lines(r)) or "None"),
            ("Wants support", _yes_no(r.get("support_requested")) or NOT_SAID),
            ("Contact", self._contact(r)),
            ("May be shared with", ", ".join(share) or "Nobody (record only)"),
        ]
        for note in r.get("staff_notes") or []:
            text = f"{_local(note.get('at'), info.zone)} ({note.get('status') or ''})\n{note.get('text')}"
            rows.append(("Staff note", text))
        return rows

    @staticmethod
    def _contact(r: Mapping[str, Any]) -> str:
        c = r.get("contact")
        if r.get("anonymous") or not c:
            return "Anonymous: the reporter asked not to be contacted"
        lines = _how(c)
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


def _how(c: Mapping[str, Any]) -> list[str]:
    """How the reporter wants to be reached, and what to avoid."""
    lines = []
    if c.get("in_chat"):
        lines.append("Reply in the chat they used (reportbot reply)")
    if c.get("by") in BY:
        lines.append(f"How: {BY[str(c['by'])]}")
    if c.get("no_calls"):
        lines.append("Do not phone: calls are hard for them (use text or email)")
    if c.get("leave_message") in ("yes", "no"):
        lines.append(f"Safe to leave a message: {c['leave_message']}")
    return lines


def _who_else(r: Mapping[str, Any], label: Callable[[str], str]) -> list[tuple[str, str]]:
    """The rows about who reported for whom, and the series a report belongs to, where there are any."""
    shown: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
        ("Organisation", "organisation", str),
        ("Does the person know?", "someone_else_knows", lambda v: label(str(v))),
        ("The person helped agreed?", "helper_agreed", lambda v: _yes_no(v == "yes") or NOT_SAID),
        ("Who to contact", "helper_contact", lambda v: HELPER_CONTACT.get(str(v), NOT_SAID)),
        ("Adds to the report", "linked_to", str),
        ("Part of a series", "series", lambda v: ", ".join(str(ref) for ref in v)),
    )
    return [(name, show(r[key])) for name, key, show in shown if r.get(key)]
