"""Export writers: one report record in, one line or row out, written as it comes (the HTML page: html.py).

Each writer gets the records of storage.export one at a time and writes them straight to the open file,
keeping nothing, so an export of any size runs in flat memory. The words here are for staff and for
the partner organisations they send exports to, not for reporters: they live in code, while the option
labels a reporter chose from are read from the message catalog (what the person actually saw).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Protocol, TextIO

from bot.staff.commands.export import answers
from storage.evidence import Evidence, EvidenceError, EvidenceStore, is_stored

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
    evidence: EvidenceStore | None = None  # opens the files people sent (HTML and zip exports)


class Writer(Protocol):
    """Writes records to an open text file as they arrive."""

    def begin(self) -> None: ...

    def write(self, record: Mapping[str, Any]) -> None: ...

    def end(self, count: int) -> None: ...


def encoding_for(fmt: str) -> str:
    """The file encoding: CSV carries a byte-order mark so that Excel reads it as UTF-8."""
    return "utf-8-sig" if fmt == "csv" else "utf-8"


# -- jsonl -----------------------------------------------------------------------------------------


class JsonLinesWriter:
    """One JSON object per line, every field, transcript included."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def begin(self) -> None:
        return None

    def write(self, record: Mapping[str, Any]) -> None:
        self.out.write(json.dumps(answers.flat(record), ensure_ascii=False, separators=(",", ":")) + "\n")

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
    "organisation",
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
    "contact_by",
    "contact_leave_message",
    "contact_no_calls",
    "share_with",
    "linked_to",
    "series",
    "helper_agreed",
    "helper_contact",
    "staff_notes",
    "language",  # added last (issue 16): the columns before it keep their places
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


# Lists shown in one cell, joined with "; ".
JOINED = ("incident_types", "motivations", "share_with", "series")
# Objects spread over several columns: column -> key.
SPREAD = {
    "location": {"location_text": "text", "latitude": "latitude", "longitude": "longitude"},
    "contact": {
        "contact_name": "name",
        "contact_phone": "phone",
        "contact_email": "email",
        "contact_in_chat": "in_chat",
        "contact_safe_times": "safe_times",
        "contact_notes": "notes",
        "contact_by": "by",
        "contact_leave_message": "leave_message",
        "contact_no_calls": "no_calls",
    },
}


def evidence_lines(record: Mapping[str, Any]) -> list[str]:
    """`image/jpeg: <reference>` for each file the person sent."""
    return [
        f"{item.get('content_type') or 'file'}: {item.get('ref')}" for item in record.get("evidence") or []
    ]


NOT_DOWNLOADED = (
    "not downloaded: still waiting, or refused (too big, a type not allowed, or gone from the app)"
)


def human_size(size: int) -> str:
    """`812 bytes`, `14.2 KB`, `3.1 MB`."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def opened_evidence(
    store: EvidenceStore | None, record: Mapping[str, Any]
) -> Iterator[tuple[dict[str, Any], Evidence | None]]:
    """Each evidence item of a record with its decrypted file, or None when it is not in the store
    (a platform id kept before files were downloaded) or cannot be opened (say so, never stop the export)."""
    for item in record.get("evidence") or []:
        entry = dict(item)
        ref = str(entry.get("ref") or "")
        found: Evidence | None = None
        if store is not None and is_stored(ref):
            try:
                found = store.open(ref)
            except (OSError, EvidenceError) as exc:
                entry["problem"] = NOT_DOWNLOADED if isinstance(exc, FileNotFoundError) else str(exc)
        yield entry, found


def _note(note: Mapping[str, Any]) -> str:
    return " ".join(str(part) for part in (note.get("at"), note.get("status"), note.get("text")) if part)


def _spread(record: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of the objects spread over several (location, contact), and of the lists in one."""
    cells: dict[str, Any] = {key: "; ".join(record.get(key) or []) for key in JOINED}
    for field_name, columns in SPREAD.items():
        value = record.get(field_name) or {}
        cells.update({column: value.get(key) for column, key in columns.items()})
    return cells


def csv_row(record: Mapping[str, Any]) -> dict[str, str | float | int]:
    """One report flattened for a spreadsheet: lists joined with "; ", no transcript."""
    record = answers.flat(record)
    cells: dict[str, Any] = {key: record.get(key) for key in CSV_COLUMNS if key in record}
    cells.update(_spread(record))
    cells["evidence"] = "; ".join(evidence_lines(record))
    cells["staff_notes"] = " | ".join(_note(note) for note in record.get("staff_notes") or [])
    return {key: _cell(cells.get(key)) for key in CSV_COLUMNS}


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
