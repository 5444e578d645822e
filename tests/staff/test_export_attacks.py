"""Exports under attack: typed text that a spreadsheet would run, and an export that fails half-way."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.config import Config
from bot.staff.commands.export.writers import csv_row
from storage.db import Database
from storage.models import AuditEvent, Report
from tests.staff.conftest import Made
from tests.staff.test_export import export


def spreadsheet_cells(record: dict[str, object]) -> dict[str, str]:
    """One record through the CSV writer and back, as a spreadsheet reads the cells."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(csv_row(record)), dialect="excel")
    writer.writeheader()
    writer.writerow(csv_row(record))
    [row] = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    return row


def test_formulas_behind_spaces_or_in_full_width_are_neutralised_too() -> None:
    typed = {
        "description": '  =HYPERLINK("http://evil.example","click")',
        "offender": "\n=1+1",
        "injuries": "\uff1dcmd|' /C calc'!A0",  # a full-width equals sign, which Excel may read as "="
        "witnesses": "\uff0b44 7700 900461",
        "location": {"text": " @SUM(1)"},
        "contact": {"name": "\t-2+3", "notes": "\uff20import"},
    }
    cells = spreadsheet_cells({"reference": "HC-7K3Q-9XPD", **typed})
    for column in ("description", "offender", "injuries", "witnesses", "location_text"):
        assert cells[column].startswith("'"), (column, cells[column])
    assert cells["contact_name"].startswith("'") and cells["contact_notes"].startswith("'")
    assert cells["description"] == "'" + typed["description"], "the words themselves are kept"


def test_an_export_that_fails_half_way_leaves_no_file_and_no_audit(
    staff_config_path: Path,
    staff_config: Config,
    made: Made,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A value that no key decrypts (a damaged row) stops the export after the first report was
    written: nothing may be left behind, beside the target or anywhere else in its folder."""

    async def damage() -> None:
        db = Database(staff_config.database_url)
        async with db.transaction() as s:
            await s.execute(
                update(Report).where(Report.reference == made.refs[1]).values(sealed_enc="gAAAAAdamaged")
            )
        await db.dispose()

    async def exports_audited() -> int:
        db = Database(staff_config.database_url)
        async with db.transaction() as s:
            query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "export")
            n = int((await s.execute(query)).scalar() or 0)
        await db.dispose()
        return n

    asyncio.run(damage())
    out = tmp_path / "reports.jsonl"
    before = sorted(p.name for p in tmp_path.iterdir())
    assert export(staff_config_path, "jsonl", out) == 1
    assert "security.encryption_keys" in capsys.readouterr().err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "no partial or temporary file"
    assert asyncio.run(exports_audited()) == 0
