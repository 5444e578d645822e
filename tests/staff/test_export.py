"""`reportbot export`: reports made through the console conversation, exported in each format and read back."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import stat
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from storage.db import Database
from storage.models import AuditEvent
from tests.conftest import require_chromium
from tests.staff import screenshot
from tests.staff.conftest import AT_A, AT_B, AT_C, Made

CONTRACT = {
    "reference",
    "submitted_at",
    "channel",
    "role",
    "incident_types",
    "motivations",
    "occurred_on",
    "occurred_at_text",
    "location",
    "description",
    "repeat",
    "offender",
    "injuries",
    "witnesses",
    "evidence",
    "support_requested",
    "anonymous",
    "contact",
    "share_with",
    "transcript",
    "status",
}


def export(config: Path, fmt: str, out: Path, *options: str) -> int:
    return main(["--config", str(config), "export", "--format", fmt, "--out", str(out), *options])


def jsonl(config: Path, tmp_path: Path, *options: str) -> list[dict[str, Any]]:
    out = tmp_path / "reports.jsonl"
    assert export(config, "jsonl", out, *options) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def screen_from(transcript: list[dict[str, Any]]) -> str:
    """The console as the person saw it, rebuilt from the exported transcript alone."""
    return "".join(f"> {t['text']}\n\n" if t["direction"] == "in" else f"{t['text']}\n\n" for t in transcript)


def test_jsonl_has_every_field_decrypted(staff_config_path: Path, made: Made, tmp_path: Path) -> None:
    records = {r["reference"]: r for r in jsonl(staff_config_path, tmp_path)}
    a_ref, b_ref, c_ref = made.refs
    assert set(records) == {a_ref, b_ref, c_ref}
    for record in records.values():
        assert set(record) >= CONTRACT, CONTRACT - set(record)
        assert set(record["location"]) == {"text", "latitude", "longitude"}

    a, b, c = records[a_ref], records[b_ref], records[c_ref]
    assert a["submitted_at"] == "2026-03-18T10:00:00Z"
    assert (a["channel"], a["role"], a["status"]) == ("console", "victim", "new")
    assert a["incident_types"] == ["verbal", "property"] and a["motivations"] == ["race"]
    assert a["description"].startswith('=HYPERLINK("http://evil.example","click") He shouted at me')
    assert "Then he kicked my bike over." in a["description"]
    assert a["occurred_on"] == "2026-03-18" and "evening" in a["occurred_at_text"]
    assert a["location"]["text"] == "High Street, Townsville"
    assert a["offender"].startswith("Tall man in a red coat")
    assert a["repeat"] == "first" and a["support_requested"] is True and a["witnesses"] == "yes"
    assert a["anonymous"] is False
    assert a["contact"] == {
        "name": None,
        "phone": None,
        "email": None,
        "in_chat": True,
        "safe_times": None,
        "notes": None,
        "by": "chat",
        "leave_message": None,
        "no_calls": False,
    }
    assert a["share_with"] == ["police"]

    assert b["submitted_at"] == "2026-04-02T23:30:00Z"
    assert b["role"] == "witness" and b["anonymous"] is True and b["contact"] is None
    assert b["share_with"] == ["council"] and b["repeat"] == "before"
    assert b["description"].startswith("+44 crowd shouting")

    assert c["role"] == "someone_else" and c["someone_else_knows"] == "yes"
    assert c["occurred_on"] == "2026-03-02" and c["location"]["text"] == "Bus station, Market Road"
    assert c["contact"]["name"] == "Sam Jones" and c["contact"]["in_chat"] is False
    assert (c["contact"]["by"], c["contact"]["leave_message"]) == ("phone", "no")
    assert c["contact"]["phone"] == "+447700900123"
    assert c["contact"]["safe_times"] == "After 6pm"
    assert c["contact"]["notes"] == "Please don't leave voicemail"
    assert sorted(c["share_with"]) == ["council", "police"]


def test_jsonl_transcript_is_the_whole_conversation_in_order(
    staff_config_path: Path, made: Made, tmp_path: Path
) -> None:
    records = {r["reference"]: r for r in jsonl(staff_config_path, tmp_path)}
    for conversation, at in ((made.a, AT_A), (made.b, AT_B), (made.c, AT_C)):
        transcript = records[conversation.reference]["transcript"]
        assert screen_from(transcript) == conversation.screen
        assert {t["direction"] for t in transcript} == {"in", "out"}
        assert {t["at"] for t in transcript} == {at.strftime("%Y-%m-%dT%H:%M:%SZ")}
        # It ends with the message that gives the reference, followed at most by the support services that fit.
        ending = [t["text"] for t in transcript if t["direction"] == "out"][-2:]
        assert conversation.reference in ending[0] + ending[-1]
        assert ending[-1].startswith("Support you can contact:") or conversation.reference in ending[-1]


@pytest.mark.parametrize(
    ("partner", "expected"),
    [("police", "ac"), ("council", "bc")],
)
def test_partner_filter_exports_only_what_the_reporter_agreed_to(
    staff_config_path: Path, made: Made, tmp_path: Path, partner: str, expected: str
) -> None:
    wanted = {getattr(made, letter).reference for letter in expected}
    records = jsonl(staff_config_path, tmp_path, "--partner", partner)
    assert {r["reference"] for r in records} == wanted
    assert all(partner in r["share_with"] for r in records)


def test_an_unknown_partner_is_refused_with_the_known_ones(
    staff_config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.jsonl"
    assert export(staff_config_path, "jsonl", out, "--partner", "polise") == 1
    err = capsys.readouterr().err
    assert "'polise' is not a configured partner id (police, council)" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("--since", "2026-04-01"), "bc"),
        (("--until", "2026-04-02"), "a"),  # B was sent at 00:30 on 3 April, London time
        (("--since", "2026-04-03", "--until", "2026-04-03"), "b"),
        (("--since", "2026-03-18", "--until", "2026-05-10"), "abc"),
        (("--since", "2026-03-19", "--until", "2026-05-09"), "b"),
        (("--since", "2026-06-01"), ""),
    ],
)
def test_date_filters_are_inclusive_days_in_the_service_time_zone(
    staff_config_path: Path, made: Made, tmp_path: Path, options: tuple[str, ...], expected: str
) -> None:
    wanted = {getattr(made, letter).reference for letter in expected}
    assert {r["reference"] for r in jsonl(staff_config_path, tmp_path, *options)} == wanted


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (("--since", "18/03/2026"), "--since: '18/03/2026' is not a date like 2026-03-31"),
        (
            ("--since", "2026-05-01", "--until", "2026-04-01"),
            "--since 2026-05-01 is after --until 2026-04-01",
        ),
        (("--reference", "HC-1234"), "'HC-1234' is not a report reference"),
        (("--reference", "HC-2222-2222"), "no report has the reference HC-2222-2222"),
    ],
)
def test_bad_filters_get_a_clear_answer_and_write_nothing(
    staff_config_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    message: str,
) -> None:
    out = tmp_path / "x.jsonl"
    assert export(staff_config_path, "jsonl", out, *options) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [tmp_path / "deploy"]


def test_reference_filter_exports_one_report(staff_config_path: Path, made: Made, tmp_path: Path) -> None:
    records = jsonl(staff_config_path, tmp_path, "--reference", made.refs[1].lower())
    assert [r["reference"] for r in records] == [made.refs[1]]


def test_csv_opens_in_a_spreadsheet_with_formulas_neutralised(
    staff_config_path: Path, made: Made, tmp_path: Path
) -> None:
    out = tmp_path / "reports.csv"
    assert export(staff_config_path, "csv", out) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the byte-order mark to read UTF-8"
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""), dialect="excel"))
    by_ref = {row["reference"]: row for row in rows}
    assert len(rows) == 3 and set(by_ref) == set(made.refs)
    assert "transcript" not in rows[0]
    a, b, c = (by_ref[ref] for ref in made.refs)
    assert a["description"].startswith("'=HYPERLINK(")
    assert b["description"].startswith("'+44 crowd")
    assert c["description"].startswith("'-1 stars")
    for row in rows:
        for column, value in row.items():
            assert not value.startswith(("=", "+", "-", "@")), (column, value)
    assert a["incident_types"] == "verbal; property" and a["share_with"] == "police"
    assert sorted(c["share_with"].split("; ")) == ["council", "police"]
    assert a["contact_in_chat"] == "yes" and a["anonymous"] == "no"
    assert b["anonymous"] == "yes" and b["contact_name"] == ""
    assert c["contact_name"] == "Sam Jones" and c["contact_safe_times"] == "After 6pm"
    assert c["contact_phone"] == "'+447700900123", "a phone number stays text, not a formula or a number"
    assert a["submitted_at"] == "2026-03-18T10:00:00Z" and a["status"] == "new"
    assert "Then he kicked my bike over." in a["description"]


VOID = {"meta", "br", "img", "link", "input", "hr", "wbr"}


class Page(HTMLParser):
    """Collects what a reader of the export would see: reports, summary rows and chat bubbles."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self._report: str | None = None
        self._stack: list[tuple[str, dict[str, str | None]]] = []
        self._text: list[str] = []
        self._item: str | None = None
        self._th: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        a = dict(attrs)
        if tag == "article":
            self._report = a["id"]
            assert self._report is not None
            self.reports[self._report] = {"summary": {}, "chat": []}
        if tag == "li":
            self._item = a.get("class")
        if tag in ("th", "td", "div") or (tag == "span" and a.get("class") == "meta"):
            self._text = []
        if tag not in VOID:
            self._stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        opened, a = self._stack.pop()
        assert opened == tag, (opened, tag)
        text = "".join(self._text)
        if self._report is None:
            return
        report = self.reports[self._report]
        if tag == "th":
            self._th = text
        elif tag == "td" and self._th is not None:
            report["summary"][self._th] = text
        elif tag == "div" and a.get("class") == "bubble":
            report["chat"].append((self._item, text))
        elif tag == "article":
            self._report = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def test_html_is_one_self_contained_page_with_each_transcript_as_a_chat(
    staff_config_path: Path, made: Made, tmp_path: Path
) -> None:
    records = {r["reference"]: r for r in jsonl(staff_config_path, tmp_path)}
    out = tmp_path / "reports.html"
    assert export(staff_config_path, "html", out) == 0
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    page.close()

    assert set(page.reports) == set(made.refs)
    assert "script" not in page.tags and "img" not in page.tags and "link" not in page.tags
    assert not [v for k, v in page.attrs if k in ("src", "href") and v], "no external assets"
    for ref, report in page.reports.items():
        transcript = records[ref]["transcript"]
        expected = [("person" if t["direction"] == "in" else "bot", t["text"]) for t in transcript]
        assert report["chat"] == expected
    a, b, c = (page.reports[ref]["summary"] for ref in made.refs)
    assert a["What happened"] == "Verbal abuse or threats, Damage to property"
    assert a["Why they think it happened"] == "Race or nationality"
    assert a["In their own words"].startswith('=HYPERLINK("http://evil.example","click")')
    assert a["Where"] == "High Street, Townsville"
    assert a["Submitted"] == "18 Mar 2026, 10:00"
    assert "Reply in the chat" in a["Contact"]
    assert a["May be shared with"] == "Police"
    assert b["Contact"].startswith("Anonymous")
    assert b["Submitted"] == "03 Apr 2026, 00:30"  # London time
    assert b["May be shared with"] == "The council"
    assert "<script>" in b["In their own words"], "typed markup is shown as text, never run"
    assert "Name: Sam Jones" in c["Contact"] and "Safe times: After 6pm" in c["Contact"]


def test_export_file_is_private_replaces_an_old_one_and_is_audited(
    staff_config_path: Path,
    staff_db: Database,
    made: Made,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "reports.html"
    out.write_text("an old export, readable by everyone")
    out.chmod(0o644)
    assert export(staff_config_path, "html", out, "--partner", "police") == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "an old export" not in out.read_text()
    captured = capsys.readouterr()
    assert captured.out == f"reportbot export: wrote 2 reports to {out} (html, readable by you only)\n"
    assert captured.err == "", "no progress bar when the output is not a terminal"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy", "reports.html"], "no temporary files left"


async def test_export_records_an_audit_event_without_content(
    staff_config_path: Path, staff_db: Database, made: Made, tmp_path: Path
) -> None:
    import asyncio

    out = tmp_path / "r.csv"
    code = await asyncio.to_thread(export, staff_config_path, "csv", out, "--since", "2026-04-01")
    assert code == 0
    async with staff_db.transaction() as s:
        events = list((await s.execute(select(AuditEvent))).scalars())
    assert [(e.action, e.count) for e in events] == [("export", 2)]
    assert events[0].detail == "format=csv; submitted from 2026-04-01"
    assert events[0].actor


BOT_BUBBLE = (0xE3, 0xF0, 0xFF)  # --bot in bot/staff/commands/export/html.py
PERSON_BUBBLE = (0xEE, 0xF1, 0xF5)  # --person
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.mark.slow  # a real Chromium
def test_html_renders_as_a_chat_in_headless_chromium(
    staff_config_path: Path, made: Made, tmp_path: Path
) -> None:
    """The page as a browser draws it; the PNG is kept in artifacts/ for people to look at."""
    require_chromium()
    from PIL import Image

    html = tmp_path / "reports.html"
    assert export(staff_config_path, "html", html, "--reference", made.refs[0]) == 0
    ARTIFACTS.mkdir(exist_ok=True)
    png = ARTIFACTS / "export-html.png"
    screenshot.shoot(html, png, height=1800)
    with Image.open(png) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1100, 1800)
        colours = {colour for _, colour in rgb.getcolors(maxcolors=1_000_000) or []}
    assert BOT_BUBBLE in colours and PERSON_BUBBLE in colours, "the transcript is drawn as chat bubbles"


def test_a_terminal_sees_a_progress_bar(staff_config_path: Path, tmp_path: Path) -> None:
    """Run as a person would in a terminal: stderr is a pseudo-terminal, so rich draws its progress bar."""
    import os
    import pty
    import subprocess
    import sys

    out = tmp_path / "reports.jsonl"
    command = [sys.executable, "-m", "bot.cli", "--config", str(staff_config_path)]
    command += ["export", "--format", "jsonl", "--out", str(out)]
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=follower,
            env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"},
            timeout=60,
            check=True,
        )
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: everything has been read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower != -1:
            os.close(follower)
        os.close(leader)
    text = shown.decode("utf-8", "replace")
    assert "exporting" in text and "3/3" in text, text
    assert done.stdout.decode().startswith("reportbot export: wrote 3 reports")


def test_an_export_to_a_missing_folder_is_refused_and_not_audited(
    staff_config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(staff_config_path, "csv", tmp_path / "nowhere" / "r.csv") == 1
    assert f"--out: the folder {tmp_path / 'nowhere'} does not exist" in capsys.readouterr().err
    assert export(staff_config_path, "csv", tmp_path) == 1
    assert "is a folder; give a file name" in capsys.readouterr().err
    assert asyncio.run(audit_actions(staff_config_path)) == []


async def audit_actions(config_path: Path) -> list[str]:
    from bot.config import load_config

    db = Database(load_config(config_path, env={}).database_url)
    try:
        async with db.transaction() as s:
            return [e.action for e in (await s.execute(select(AuditEvent))).scalars()]
    finally:
        await db.dispose()


def test_the_audit_trail_finds_an_export_by_any_report_in_it(
    staff_config_path: Path, made: Made, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(staff_config_path, "jsonl", tmp_path / "p.jsonl", "--partner", "council") == 0
    capsys.readouterr()
    for ref, listed in ((made.refs[1], True), (made.refs[2], True), (made.refs[0], False)):
        assert main(["--config", str(staff_config_path), "audit", "--reference", ref]) == 0
        out = capsys.readouterr().out
        assert ("export" in out) is listed, (ref, out)


async def test_a_very_large_export_is_audited_by_its_selection_not_its_references(
    staff_config_path: Path, staff_db: Database, made: Made, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.staff.commands import export as staff

    monkeypatch.setattr(staff, "AUDIT_REFERENCES_MAX", 2)  # as if the export held more than 10,000
    code = await asyncio.to_thread(export, staff_config_path, "csv", tmp_path / "all.csv")
    assert code == 0
    async with staff_db.transaction() as s:
        [event] = list((await s.execute(select(AuditEvent))).scalars())
    assert (event.count, event.refs) == (3, None)
    assert event.detail == "format=csv; all reports; too many to list, see the selection"
