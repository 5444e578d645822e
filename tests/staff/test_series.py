"""Repeat harassment (issue 18): a new report added to an earlier one, as the person sees it and as staff
export it. From the report's own chat the reference alone is enough; from anywhere else the secret code shown
at sending is needed, and a wrong or missing code reveals nothing, links nothing, and counts as a failed
look-up under the status lockout."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.config import Config
from storage.db import Database
from storage.models import AuditEvent, LookupFailure, Report, ReportLink
from tests.conftest import require_chromium
from tests.staff import screenshot
from tests.staff.conftest import Made
from tests.staff.conversation import CONTACT_IN_CHAT, converse

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
LATER = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
LATER2 = datetime(2026, 6, 20, 18, 0, tzinfo=UTC)
CODE = re.compile(r"Your secret code is ([a-z0-9]{4}-[a-z0-9]{4})\.")
# A report joined to an earlier one: welcome, safe now, "is this still right?" yes, then only what changed.
THIS_TIME = [
    "continue",
    "no",  # safe now
    "yes",  # the earlier answers are still right
    "He threw eggs at my door this time.",
    "done",
    "3",  # damage to property
    "done",
    "1",  # race or nationality
    "done",
    "1",  # today
    "3",  # evening
    "Flat 2, Elm Road",
    "2",  # nobody hurt
    "1",  # property damaged
    "2",  # no witnesses
    "done",  # no evidence
    "1",  # send
]
NOT_JOINED = (
    "We could not join it to that report. Check the reference. If you write from a different chat, type "
    "add, then your reference, then your secret code."
)


def after(screen: str, typed: str) -> str:
    """What the bot answered to one line (up to the next thing the person typed)."""
    return screen.split(f"> {typed}\n\n", 1)[1].split("\n> ", 1)[0]


def code_of(screen: str) -> str:
    found = CODE.search(screen)
    assert found is not None, "the secret code is shown at sending, beside the reference"
    return found.group(1)


async def linked_to(db: Database, reference: str) -> str | None:
    async with db.transaction() as s:
        return (await s.execute(select(Report.linked_to).where(Report.reference == reference))).scalar_one()


def export_jsonl(config: Path, out: Path, *options: str) -> list[dict[str, object]]:
    args = ["--config", str(config), "export", "--format", "jsonl", "--out", str(out), *options]
    assert main(args) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


async def test_from_its_own_chat_the_reference_alone_adds_a_new_report_to_the_earlier_one(
    staff_config: Config, staff_db: Database, made: Made
) -> None:
    first = made.refs[0]  # chat-a: contact here in the chat, shared with the police
    again = await converse(staff_config, staff_db, [f"add {first}", *THIS_TIME], chat_id="chat-a", at=LATER)
    answer = after(again.screen, f"add {first}")
    assert answer.startswith(
        f"This new report will be joined to your report {first}. We will ask about what happened this time."
    )
    assert again.reference is not None and again.reference != first, "the new incident has its own reference"
    assert await linked_to(staff_db, again.reference) == first
    assert await linked_to(staff_db, first) is None


async def test_the_same_neighbour_again_from_the_same_chat_reuses_the_earlier_answers_after_asking(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made, tmp_path: Path
) -> None:
    first = made.refs[0]
    said = "it's the same neighbour again"
    again = await converse(staff_config, staff_db, [said, *THIS_TIME], chat_id="chat-a", at=LATER)
    assert after(again.screen, said).startswith(f"This new report will be joined to your report {first}.")
    check = after(again.screen, "no")
    assert check.startswith("Last time you told us:") and "Is this still right?" in check
    assert "Who did it: Tall man in a red coat" in check and "Who: It happened to me" in check
    for question in ("Has this happened before?", "Who did it?", "How would you like us to contact you?"):
        assert question not in again.screen.split(said, 1)[1], f"{question!r} is not asked again"
    assert again.reference is not None
    records = await asyncio.to_thread(export_jsonl, staff_config_path, tmp_path / "all.jsonl")
    new = next(r for r in records if r["reference"] == again.reference)
    assert new["linked_to"] == first and new["repeat"] == "before"
    assert new["description"] == "He threw eggs at my door this time."
    assert str(new["offender"]).startswith("Tall man in a red coat")
    assert new["contact"]["in_chat"] is True and new["share_with"] == ["police"]


async def test_from_another_chat_the_reference_without_the_code_reveals_nothing_and_links_nothing(
    staff_config: Config, staff_db: Database, made: Made
) -> None:
    first = made.refs[0]
    stranger = await converse(
        staff_config, staff_db, [f"add {first}", *CONTACT_IN_CHAT], chat_id="stranger", at=LATER
    )
    answer = after(stranger.screen, f"add {first}")
    assert answer.startswith(NOT_JOINED)
    assert "joined to your report" not in stranger.screen
    assert "High Street" not in answer and "red coat" not in answer, "nothing of the earlier report is shown"
    assert stranger.reference is not None and await linked_to(staff_db, stranger.reference) is None
    async with staff_db.transaction() as s:
        failures = sum(f.failures for f in (await s.execute(select(LookupFailure))).scalars())
    assert failures >= 1, "a look-up without the code counts as a failed look-up"

    # A reference that does not exist gets the very same words: nothing tells the two apart.
    missing = await converse(staff_config, staff_db, ["add HC-2222-2222"], chat_id="stranger", at=LATER)
    assert after(missing.screen, "add HC-2222-2222").startswith(NOT_JOINED)

    # A wrong code neither.
    wrong = f"add {first} aaaa-aaaa"
    guess = await converse(staff_config, staff_db, [wrong], chat_id="stranger-2", at=LATER)
    assert after(guess.screen, wrong).startswith(NOT_JOINED)


async def test_with_the_secret_code_a_new_report_from_another_phone_is_joined(
    staff_config: Config, staff_db: Database, made: Made
) -> None:
    first = made.refs[1]  # chat-b: anonymous, no chat kept; only the code opens it
    typed = f"add {first.lower()} {code_of(made.b.screen).upper()}"
    again = await converse(
        staff_config, staff_db, [typed, *CONTACT_IN_CHAT[1:]], chat_id="new-phone", at=LATER
    )
    assert after(again.screen, typed).startswith(f"This new report will be joined to your report {first}.")
    assert again.reference is not None and await linked_to(staff_db, again.reference) == first


async def test_export_carries_linked_to_and_the_series_oldest_first(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made, tmp_path: Path
) -> None:
    first = made.refs[0]
    second = await converse(staff_config, staff_db, [f"add {first}", *THIS_TIME], chat_id="chat-a", at=LATER)
    assert second.reference is not None
    records = await asyncio.to_thread(export_jsonl, staff_config_path, tmp_path / "all.jsonl")
    by_ref = {r["reference"]: r for r in records}
    assert by_ref[second.reference]["linked_to"] == first
    assert by_ref[first]["linked_to"] is None
    assert by_ref[first]["series"] == by_ref[second.reference]["series"] == [first, second.reference]
    assert by_ref[made.refs[2]]["series"] == [], "a report on its own is in no series"


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


async def audited(db: Database, action: str) -> list[AuditEvent]:
    async with db.transaction() as s:
        return list((await s.execute(select(AuditEvent).where(AuditEvent.action == action))).scalars())


async def test_staff_link_two_reports_into_a_series_and_unlink_them_audited_without_the_note(
    staff_config_path: Path, staff_db: Database, made: Made, tmp_path: Path
) -> None:
    a, b, c = made.refs
    note = "Same car seen outside both addresses"
    assert await asyncio.to_thread(cli, staff_config_path, "link", a, c.lower(), "--note", note) == 0
    [event] = await audited(staff_db, "link")
    assert event.refs == sorted([a, c]) and event.actor and "note added" in (event.detail or "")
    assert note not in (event.detail or ""), "the audit never holds the note"

    records = await asyncio.to_thread(export_jsonl, staff_config_path, tmp_path / "linked.jsonl")
    by_ref = {r["reference"]: r for r in records}
    assert by_ref[a]["series"] == by_ref[c]["series"] == [a, c] and by_ref[b]["series"] == []
    assert await asyncio.to_thread(cli, staff_config_path, "link", a, c) == 1, "already linked: refused"

    series = await asyncio.to_thread(export_jsonl, staff_config_path, tmp_path / "s.jsonl", "--series", c)
    assert [r["reference"] for r in series] == [a, c], "--series: the whole pattern, oldest first"

    assert await asyncio.to_thread(cli, staff_config_path, "unlink", c, a) == 0
    [event] = await audited(staff_db, "unlink")
    assert event.refs == sorted([a, c]) and event.count == 1
    records = await asyncio.to_thread(export_jsonl, staff_config_path, tmp_path / "after.jsonl")
    assert all(r["series"] == [] for r in records)
    assert await asyncio.to_thread(cli, staff_config_path, "unlink", c, a) == 1, "not linked: refused"


async def test_export_series_of_a_report_in_a_series_the_person_made_lists_it_in_order(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made, tmp_path: Path
) -> None:
    first = made.refs[0]
    second = await converse(staff_config, staff_db, [f"add {first}", *THIS_TIME], chat_id="chat-a", at=LATER)
    third = await converse(
        staff_config, staff_db, [f"add {second.reference}", *THIS_TIME], chat_id="chat-a", at=LATER2
    )
    assert second.reference and third.reference
    out = tmp_path / "series.jsonl"
    records = await asyncio.to_thread(export_jsonl, staff_config_path, out, "--series", second.reference)
    assert [r["reference"] for r in records] == [first, second.reference, third.reference]
    assert [r["linked_to"] for r in records] == [None, first, second.reference]
    [event] = await audited(staff_db, "export")
    assert event.refs == sorted([first, second.reference, third.reference])


async def test_erasing_one_report_of_a_series_keeps_the_others_and_the_link_history_without_its_content(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made, tmp_path: Path
) -> None:
    first = made.refs[0]
    second = await converse(staff_config, staff_db, [f"add {first}", *THIS_TIME], chat_id="chat-a", at=LATER)
    third = await converse(
        staff_config, staff_db, [f"add {second.reference}", *THIS_TIME], chat_id="chat-a", at=LATER2
    )
    assert second.reference and third.reference
    assert await asyncio.to_thread(cli, staff_config_path, "erase", second.reference) == 0

    records = await asyncio.to_thread(export_jsonl, staff_config_path, tmp_path / "left.jsonl")
    by_ref = {r["reference"]: r for r in records}
    assert second.reference not in by_ref
    assert by_ref[first]["series"] == by_ref[third.reference]["series"] == [first, third.reference]
    assert by_ref[third.reference]["linked_to"] == second.reference, "the link history keeps the reference"
    async with staff_db.transaction() as s:
        kept = list((await s.execute(select(ReportLink))).scalars())
    assert [(k.reference, k.other, k.note_enc) for k in kept] == [(second.reference, first, None)]
    assert "He threw eggs" not in json.dumps([by_ref[first]["transcript"]]), "nothing of its content"


async def test_stats_count_series_and_repeat_incidents_apart_from_single_reports(
    staff_config_path: Path,
    staff_config: Config,
    staff_db: Database,
    made: Made,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = made.refs[0]
    second = await converse(staff_config, staff_db, [f"add {first}", *THIS_TIME], chat_id="chat-a", at=LATER)
    await converse(
        staff_config, staff_db, [f"add {second.reference}", *THIS_TIME], chat_id="chat-a", at=LATER2
    )
    capsys.readouterr()
    assert await asyncio.to_thread(cli, staff_config_path, "stats") == 0
    lines = [" ".join(line.split()) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == "Report Hate: 5 reports (all reports)"
    for expected in (
        "Reports on their own 2",
        "Series (reports linked together) 1",
        "Repeat incidents (later reports of a series) 2",
    ):
        assert expected in lines, (expected, lines)


async def test_a_champion_reports_for_someone_with_their_agreement_and_the_export_shows_it(
    staff_config_path: Path, staff_config: Config, staff_db: Database, tmp_path: Path
) -> None:
    helper = ["5", "Eastside Community Centre", "1", "2"]  # helping someone; agreed; contact me, the helper
    at = CONTACT_IN_CHAT.index("It happened to me")
    lines = [*CONTACT_IN_CHAT[:at], *helper, *CONTACT_IN_CHAT[at + 1 :]]
    made = await converse(staff_config, staff_db, lines, chat_id="champion", at=LATER)
    screen = made.screen
    assert "4. For an organisation\n5. I am helping someone" in after(screen, "no")
    assert after(screen, "5").startswith("Which group or service are you with?")
    assert after(screen, "Eastside Community Centre").startswith(
        "Does the person you are helping agree to this report?"
    )
    assert "1. The person I am helping\n2. Me, the helper\n3. Nobody" in after(screen, "1")
    assert made.reference is not None
    records = await asyncio.to_thread(export_jsonl, staff_config_path, tmp_path / "c.jsonl")
    record = next(r for r in records if r["reference"] == made.reference)
    assert record["role"] == "helper" and record["organisation"] == "Eastside Community Centre"
    assert record["helper_agreed"] == "yes" and record["helper_contact"] == "contact_helper"
    assert record["share_with"] == ["police"], "consent to share works as for any report"


async def series_page(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made, tmp_path: Path
) -> tuple[Path, str, str]:
    """A second report added to the first, and the HTML export of their series: the page, both references."""
    first = made.refs[0]
    second = await converse(staff_config, staff_db, [f"add {first}", *THIS_TIME], chat_id="chat-a", at=LATER)
    assert second.reference is not None
    page = tmp_path / "series.html"
    args = ["--config", str(staff_config_path), "export", "--format", "html", "--out", str(page)]
    assert await asyncio.to_thread(main, [*args, "--series", first]) == 0
    return page, first, second.reference


async def test_the_html_export_groups_a_series_on_one_page_with_a_timeline(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made, tmp_path: Path
) -> None:
    page, first, second_reference = await series_page(
        staff_config_path, staff_config, staff_db, made, tmp_path
    )
    text = page.read_text(encoding="utf-8")
    assert f"<h2>Series of 2 reports: {first}, {second_reference}</h2>" in text
    timeline = text.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    assert timeline.index(f'href="#{first}"') < timeline.index(f'href="#{second_reference}"'), "oldest first"
    assert f"(adds to {first})" in timeline and "Damage to property" in timeline
    assert text.index('<ol class="timeline">') < text.index(f'<article class="report" id="{first}">')
    assert "<td>" + first + "</td>" in text, "each report names the report it adds to"


@pytest.mark.slow  # a real Chromium
async def test_the_html_export_of_a_series_as_headless_chromium_draws_it(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made, tmp_path: Path
) -> None:
    """The series page as a browser draws it; the PNG is kept in artifacts/ for people to look at."""
    require_chromium()
    from PIL import Image

    page, _, _ = await series_page(staff_config_path, staff_config, staff_db, made, tmp_path)
    png = ARTIFACTS / "export-series.png"
    ARTIFACTS.mkdir(exist_ok=True)
    await asyncio.to_thread(screenshot.shoot, page, png, height=1400)
    with Image.open(png) as image:
        assert image.size == (1100, 1400)
        assert len(image.convert("RGB").getcolors(maxcolors=1_000_000) or []) > 10, "a page was drawn"
