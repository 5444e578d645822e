"""Who did it and what harm was done: stored as answers, exported as the same strings as ever, named in HTML.

Reports stored before the answers were kept apart (one string, `words; known=no; recognise=yes`) export
exactly as they did.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from bot.config import Config
from bot.staff.commands.export.answers import HARM, OFFENDER
from flows.types import Harm, Offender
from storage.crypto import Cipher
from storage.db import Database
from storage.models import Report
from tests.staff.conftest import Made
from tests.staff.test_export import Page, export, jsonl


def cipher(config: Config) -> Cipher:
    return Cipher(config.security.encryption_keys, config.security.pseudonym_key)


def sealed(config: Config, reference: str) -> dict[str, Any]:
    """What the report holds encrypted, decrypted."""

    async def read() -> Any:
        db = Database(config.database_url)
        try:
            async with db.transaction() as s:
                query = select(Report.sealed_enc).where(Report.reference == reference)
                token = (await s.execute(query)).scalar_one()
        finally:
            await db.dispose()
        return cipher(config).decrypt_json(token)

    value = asyncio.run(read())
    assert isinstance(value, dict)
    return value


def store_sealed(config: Config, reference: str, **values: Any) -> None:
    """Change what a stored report holds, as an older version of reportbot would have written it."""
    token = cipher(config).encrypt_json({**sealed(config, reference), **values})

    async def write() -> None:
        db = Database(config.database_url)
        try:
            async with db.transaction() as s:
                await s.execute(update(Report).where(Report.reference == reference).values(sealed_enc=token))
        finally:
            await db.dispose()

    asyncio.run(write())


def csv_rows(config_path: Path, tmp_path: Path) -> dict[str, dict[str, str]]:
    out = tmp_path / "reports.csv"
    assert export(config_path, "csv", out) == 0
    rows = csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"), newline=""))
    return {row["reference"]: row for row in rows}


def html_summaries(config_path: Path, tmp_path: Path) -> dict[str, dict[str, str]]:
    out = tmp_path / "reports.html"
    assert export(config_path, "html", out) == 0
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    page.close()
    return {ref: report["summary"] for ref, report in page.reports.items()}


def test_answers_are_stored_apart_and_exported_as_the_same_strings(
    staff_config_path: Path, staff_config: Config, made: Made, tmp_path: Path
) -> None:
    a_ref, b_ref, c_ref = made.refs
    a = sealed(staff_config, a_ref)
    assert a["offender"] == {"description": "Tall man in a red coat", "known": "no", "recognise": "yes"}
    assert a["injuries"] == {"hurt": "no", "needs_help_now": None, "property_damaged": "yes"}
    c = sealed(staff_config, c_ref)
    assert c["injuries"] == {"hurt": "yes", "needs_help_now": "no", "property_damaged": None}

    records = {r["reference"]: r for r in jsonl(staff_config_path, tmp_path)}
    assert records[a_ref]["offender"] == "Tall man in a red coat; known=no; recognise=yes"
    assert records[a_ref]["injuries"] == "hurt=no; property_damaged=yes"
    assert records[c_ref]["injuries"] == "hurt=yes; needs_help_now=no"
    assert records[b_ref]["offender"] is None and records[b_ref]["injuries"] is None

    rows = csv_rows(staff_config_path, tmp_path)
    assert rows[a_ref]["offender"] == "Tall man in a red coat; known=no; recognise=yes"
    assert rows[c_ref]["injuries"] == "hurt=yes; needs_help_now=no"
    assert rows[b_ref]["offender"] == "" and rows[b_ref]["injuries"] == ""

    summary = html_summaries(staff_config_path, tmp_path)
    assert summary[a_ref]["Who did it"] == (
        "Tall man in a red coat\nKnows who they are: No\nWould recognise them: Yes"
    )
    assert summary[a_ref]["Harm"] == "Anyone hurt: No\nProperty damaged: Yes"
    assert summary[c_ref]["Harm"] == "Anyone hurt: Yes\nNeeded a doctor or ambulance then: No"
    assert summary[b_ref]["Who did it"] == "Not said" and summary[b_ref]["Harm"] == "Not said"


def test_a_report_stored_the_old_way_exports_as_it_did(
    staff_config_path: Path, staff_config: Config, made: Made, tmp_path: Path
) -> None:
    ref = made.refs[0]
    old_offender = "Tall man; red coat; known=no; recognise=yes"
    store_sealed(staff_config, ref, offender=old_offender, injuries="hurt=yes; needs_help_now=yes")

    [record] = jsonl(staff_config_path, tmp_path, "--reference", ref)
    assert record["offender"] == old_offender
    assert record["injuries"] == "hurt=yes; needs_help_now=yes"
    assert csv_rows(staff_config_path, tmp_path)[ref]["offender"] == old_offender
    summary = html_summaries(staff_config_path, tmp_path)[ref]
    assert summary["Who did it"] == "Tall man\nred coat\nKnows who they are: No\nWould recognise them: Yes"
    assert summary["Harm"] == "Anyone hurt: Yes\nNeeded a doctor or ambulance then: Yes"


def test_words_that_look_like_an_answer_stay_the_persons_words(
    staff_config_path: Path, staff_config: Config, made: Made, tmp_path: Path
) -> None:
    ref = made.refs[0]
    typed = "Two men; known=yes from the market"
    offender = {"description": typed, "known": "no", "recognise": None}
    store_sealed(staff_config, ref, offender=offender)

    summary = html_summaries(staff_config_path, tmp_path)[ref]
    assert summary["Who did it"] == f"{typed}\nKnows who they are: No"
    out = tmp_path / "one.jsonl"
    assert export(staff_config_path, "jsonl", out, "--reference", ref) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["offender"] == f"{typed}; known=no"


def test_the_export_knows_every_answer_the_flow_stores() -> None:
    offender = {f.name for f in dataclasses.fields(Offender)}
    assert offender == {OFFENDER.words, *OFFENDER.questions}
    assert {f.name for f in dataclasses.fields(Harm)} == set(HARM.questions)
