"""Whole reports in other languages, through the real channels: Polish on Telegram (the app's language),
Urdu on the console and on WhatsApp (chosen from the welcome's list), a Romanian report exported for
staff, and the web chat page in the person's language.

What the person sees is read from the catalog of their language (the real catalogs once merged; the test
catalogs in tests/flows/languages/ until then), so these read as transcripts in any of them.
"""

from __future__ import annotations

import asyncio
import io
import json
import queue
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.channels.console.chat import run_console
from bot.channels.telegram.send import Pacer
from bot.channels.telegram.webhook import TelegramChannel
from bot.channels.whatsapp.webhook import whatsapp_routes
from bot.cli import main
from bot.config import Config
from bot.server import build_app, create_app
from bot.service import ReportService
from flows import catalog, languages
from storage.db import Database
from storage.models import Report
from storage.schema import upgrade
from tests.channels.telegram_app import SECRET, TELEGRAM_TOML
from tests.channels.whatsapp_edge import PUBLIC, WHATSAPP_TOML, FakeTwilio, WhatsAppPerson
from tests.fakes.telegram_api import FakeBotAPI

RLM = "\u200f"
ENABLED = '[languages]\nenabled = ["en", "pl", "ro", "ur"]\n'
STORIES = {
    "pl": "Mężczyzna krzyczał na mnie na przystanku autobusowym.",
    "ro": "Un bărbat a țipat la mine în stația de autobuz.",
    "ur": "ایک آدمی نے بس اسٹاپ پر مجھ پر چیخا۔",
}
PLACES = {"pl": "ulica Główna", "ro": "strada Mare", "ur": "مین روڈ"}

# A plain report, answer by answer: ("key", option) picks that option however the channel shows it;
# ("text", words) types them. The same for every language.
REPORT = [
    ("key", "continue"),
    ("key", "no"),  # not happening now
    ("key", "victim"),
    ("text", "story"),
    ("key", "done"),
    ("key", "verbal"),
    ("key", "done"),
    ("key", "race"),
    ("key", "done"),
    ("key", "yesterday"),
    ("key", "evening"),
    ("text", "place"),
    ("key", "first"),
    ("text", "skip"),  # who did it: a word that works anywhere
    ("key", "no"),  # do not know them
    ("key", "no"),  # would not recognise them
    ("key", "no"),  # nobody hurt
    ("key", "no"),  # nothing damaged
    ("key", "no"),  # no witnesses
    ("text", "skip"),  # no photos
    ("key", "no"),  # no support service
    ("key", "anonymous"),
    ("key", "none"),  # share with nobody: a record only
    ("key", "done"),
]


def label(locale: str, key: str) -> str:
    return catalog.text(locale, f"option.{key}")


def typed(locale: str, value: str) -> str:
    return {"story": STORIES[locale], "place": PLACES[locale]}.get(value, value)


def number(shown: str, text: str) -> str:
    """The number of the option shown as `N. text` (a right-to-left mark may start the label)."""
    found = re.search(rf"^(\d+)\. {RLM}?{re.escape(text)}( \u2713)?$", shown, re.MULTILINE)
    assert found, f"no option {text!r} in:\n{shown}"
    return found.group(1)


def answer(locale: str, step: tuple[str, str], shown: str) -> str:
    """What a person types for one step of REPORT, on a channel that numbers options."""
    kind, value = step
    return typed(locale, value) if kind == "text" else number(shown, label(locale, value))


async def stored_report(config: Config) -> Report:
    db = Database(config.database_url)
    try:
        async with db.transaction() as s:
            return (await s.execute(select(Report))).scalar_one()
    finally:
        await db.dispose()


async def cli(argv: list[str]) -> int:
    """`reportbot ...` as staff run it (its own event loop, so in a thread of its own here)."""
    return await asyncio.to_thread(main, argv)


def readable(shown: str) -> str:
    return shown.replace(RLM, "")


class Console:
    """A person at `reportbot chat`: types one line once the console waits for it, and reads what it
    printed in between (the real console loop, on a pipe-like stdin)."""

    def __init__(self, config: Config, chat_id: str) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.asked = threading.Semaphore(0)
        self.out = io.StringIO()
        self.seen = 0
        self.task = asyncio.ensure_future(run_console(config, self, self.out, chat_id=chat_id))  # type: ignore[arg-type]

    def readline(self) -> str:  # called by the console loop, in a thread
        self.asked.release()
        return self.lines.get()

    def isatty(self) -> bool:
        return False

    async def printed(self) -> str:
        await asyncio.to_thread(self.asked.acquire)
        text = self.out.getvalue()
        new, self.seen = text[self.seen :], len(text)
        return new

    async def say(self, line: str) -> str:
        self.lines.put(f"{line}\n")
        return await self.printed()

    async def close(self) -> None:
        self.lines.put("")
        assert await self.task == 0


# ----- Telegram: Polish from the app's language ---------------------------------------------------------


async def test_a_whole_polish_report_on_telegram_from_the_apps_language(
    installed: tuple[str, ...], make_config: Callable[..., Config]
) -> None:
    config = make_config(TELEGRAM_TOML + ENABLED)
    api = FakeBotAPI()
    chat = 515151
    api.language_codes[chat] = "pl"
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    channel = TelegramChannel(config, service, api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05)
    app = create_app(config, service, [channel.routes()])
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

    async def send(update: dict[str, Any]) -> list[str]:
        before = {m.message_id: m.text for m in api.screen(chat)}
        assert (await client.post("/telegram/webhook", json=update, headers=headers)).status_code == 200
        await channel.idle()
        for _ in range(200):
            async with db.transaction() as s:
                if await channel.outbox.store.pending_count(s, "telegram") == 0:
                    break
            await channel.idle()
        return [m.text for m in api.screen(chat) if m.from_bot and before.get(m.message_id) != m.text]

    async def press(key: str) -> list[str]:
        message = next(m for m in reversed(api.screen(chat)) if m.buttons)
        labels = {data.rpartition(":")[2]: text for text, data in message.buttons}
        assert labels[key].removeprefix("\u2705 ") == label("pl", key)  # the button reads in Polish
        data = next(d for _, d in message.buttons if d.rpartition(":")[2] == key)
        return await send(api.press(chat, message.message_id, data))

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test") as client,
    ):
        welcome = await send(api.text(chat, "/start"))
        assert welcome == [
            catalog.text(
                "pl", "welcome.ask", service_name=config.service.name, operator=config.service.operator
            )
        ]  # Polish at once, and no list of languages to wade through
        replies: list[str] = []
        for kind, value in REPORT:
            replies = await (press(value) if kind == "key" else send(api.text(chat, typed("pl", value))))
        review = replies[-1]
        assert review.startswith(catalog.text("pl", "review.ask", summary="").split("\n")[0])
        for shown in (STORIES["pl"][:40], PLACES["pl"], label("pl", "verbal")):
            assert shown in review, shown
        done = await press("send")
        assert any("HC-" in text for text in done)
    await db.dispose()
    report = await stored_report(config)
    assert report.occurred_on is not None
    assert languages.show_date(report.occurred_on, "pl") in review  # "27.11.2026": as Polish writes dates
    assert report.language == "pl" and report.channel == "telegram"
    assert report.incident_types == ["verbal"] and report.motivations == ["race"]


# ----- the console: Urdu chosen from the welcome's list ---------------------------------------------------


async def test_a_whole_urdu_report_on_the_console(
    installed: tuple[str, ...], make_config: Callable[..., Config]
) -> None:
    config = make_config(ENABLED)
    console = Console(config, "urdu-console")
    say = console.say
    first = await console.printed()  # the console opens with the welcome
    assert "English · Polski · Română · اردو" in first  # one line, each language by its own name
    shown = await say("اردو")
    welcome = catalog.text(
        "ur", "welcome.ask", service_name=config.service.name, operator=config.service.operator
    )
    assert welcome.split("\n")[0] in readable(shown)
    for step in REPORT:
        shown = await say(answer("ur", step, shown))
    review = readable(shown)
    assert catalog.text("ur", "review.ask", summary="").split("\n")[0] in review
    assert STORIES["ur"][:20] in review and PLACES["ur"] in review and "2026" in review
    # Lines that start with Latin letters or digits carry a right-to-left mark, so the phone lays them out
    # right to left; nothing else changes.
    for line in shown.split("\n"):
        if re.match(r"^[A-Za-z0-9]", line.lstrip(RLM)) and not re.match(r"^\d+\. ", line):
            assert line.startswith(RLM), line
    done = await say(number(shown, label("ur", "send")))
    assert "HC-" in done
    await console.close()
    report = await stored_report(config)
    assert report.language == "ur" and report.channel == "console"


# ----- WhatsApp: Urdu by the number in the welcome's list ---------------------------------------------------


async def test_a_whole_urdu_report_on_whatsapp(
    installed: tuple[str, ...], make_config: Callable[..., Config]
) -> None:
    config = make_config(WHATSAPP_TOML + ENABLED)
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    routes = whatsapp_routes(config, service, http_client=FakeTwilio(), redeliver_every=0.05)
    app = create_app(config, service, [routes])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC) as client:
        person = WhatsAppPerson(client, service)
        shown = await person.send("Salam")
        assert "English · Polski · Română · اردو" in shown
        shown = await person.send(number(shown, "اردو"))  # the language's number in the welcome's options
        assert catalog.text("ur", "option.continue") in shown
        for step in REPORT:
            shown = await person.send(answer("ur", step, shown))
        assert STORIES["ur"][:20] in readable(shown)
        done = await person.send(number(shown, label("ur", "send")))
        assert "HC-" in done
    await db.dispose()
    report = await stored_report(config)
    assert report.language == "ur" and report.channel == "whatsapp"


# ----- staff: a Romanian report, read in English --------------------------------------------------------


async def romanian_report(config: Config) -> str:
    console = Console(config, "romanian")
    say = console.say
    await console.printed()
    shown = await say("Română")
    for step in REPORT:
        shown = await say(answer("ro", step, shown))
    done = await say(number(shown, label("ro", "send")))
    await console.close()
    found = re.search(r"HC-[0-9A-Z]{4}-[0-9A-Z]{4}", done)
    assert found, done
    return found.group(0)


async def test_a_romanian_report_exports_english_answers_beside_the_romanian_story(
    installed: tuple[str, ...], make_config: Callable[..., Config], tmp_path: Path
) -> None:
    config = make_config(ENABLED)
    reference = await romanian_report(config)
    path = Path(config.source)
    jsonl, csv_out, html = tmp_path / "r.jsonl", tmp_path / "r.csv", tmp_path / "r.html"
    for fmt, out in (("jsonl", jsonl), ("csv", csv_out), ("html", html)):
        assert await cli(["--config", str(path), "export", "--format", fmt, "--out", str(out)]) == 0
    record = json.loads(jsonl.read_text("utf-8"))
    assert record["reference"] == reference and record["language"] == "ro"
    assert record["incident_types"] == ["verbal"] and record["motivations"] == ["race"]
    assert record["description"] == STORIES["ro"]  # their own words, as typed
    assert record["location"]["text"] == PLACES["ro"]
    assert "language" in csv_out.read_text("utf-8-sig").splitlines()[0].split(",")
    page = html.read_text("utf-8")
    # The summary staff read gives the chosen answers in English (the transcript keeps what was shown).
    assert "<td>Verbal abuse or threats</td>" in page and "<td>Race or nationality</td>" in page
    assert (
        f"<td>{label('ro', 'verbal')}</td>" not in page or label("ro", "verbal") == "Verbal abuse or threats"
    )
    assert STORIES["ro"] in page and "Română (ro)" in page
    # --lang ro: a Romanian partner reads the chosen answers in Romanian.
    ro_html = tmp_path / "ro.html"
    assert (
        await cli(
            ["--config", str(path), "export", "--format", "html", "--out", str(ro_html), "--lang", "ro"]
        )
        == 0
    )
    assert f"<td>{label('ro', 'verbal')}</td>" in ro_html.read_text("utf-8")


async def test_stats_count_reports_by_language_and_lang_shows_labels_in_that_language(
    installed: tuple[str, ...], make_config: Callable[..., Config], capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(ENABLED)
    await romanian_report(config)
    assert await cli(["--config", config.source, "stats"]) == 0
    shown = capsys.readouterr().out
    assert "By language" in shown and re.search(r"Română \(ro\)\s+1", shown), shown
    assert "Race or nationality" in shown
    assert await cli(["--config", config.source, "stats", "--lang", "ro"]) == 0
    assert label("ro", "race") in capsys.readouterr().out
    assert await cli(["--config", config.source, "stats", "--lang", "xx"]) == 1
    assert "--lang" in capsys.readouterr().err


# ----- the web chat: the page in the browser's language ---------------------------------------------------


@pytest.mark.parametrize(
    ("header", "html"),
    [
        ("ur-PK,ur;q=0.9,en;q=0.5", '<html lang="ur" dir="rtl">'),
        ("pl-PL,pl;q=0.9", '<html lang="pl">'),
        ("de-DE,de;q=0.9", '<html lang="en">'),
        ("ro;q=0.2, en;q=0.9", '<html lang="en">'),
    ],
)
async def test_the_web_chat_page_takes_the_browsers_language(
    installed: tuple[str, ...], make_config: Callable[..., Config], header: str, html: str
) -> None:
    config = make_config(ENABLED)
    app = build_app(config)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            page = await client.get("/chat", headers={"Accept-Language": header})
    assert page.status_code == 200 and html in page.text


# ----- config: a catalog dropped in is checked at start ---------------------------------------------------


def test_a_catalog_with_a_changed_number_stops_the_start_with_one_line(
    installed: tuple[str, ...],
    make_config: Callable[..., Config],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = make_config()
    broken = dict(catalog.CATALOGS["en"])
    broken["emergency.ask"] = broken["emergency.ask"].replace("999", "99", 1)
    monkeypatch.setitem(catalog.CATALOGS, "xx", broken)  # type: ignore[index]
    assert main(["--config", config.source, "flow"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(
        "reportbot: config error: flows/messages/xx.toml: emergency.ask: has numbers that differ from English"
    ), err
    assert "999" in err  # what English has, so the interpreter sees what to write


async def test_on_the_web_chat_picking_urdu_turns_the_page_right_to_left(
    installed: tuple[str, ...], make_config: Callable[..., Config]
) -> None:
    """A browser that asks for German: the page is English and lists the languages; the person picks
    Urdu, and the page, its words and the replies are Urdu, right to left, from then on."""
    config = make_config(ENABLED)
    app = build_app(config)
    await upgrade(app.state.service.db)
    german = {"Accept-Language": "de-DE,de;q=0.9"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1", headers=german
        ) as client:
            page = await client.get("/chat")
            assert '<html lang="en">' in page.text
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert csrf is not None
            fetch = {"X-Reportbot-Fetch": "1"}
            first = await client.post(
                "/chat/send", data={"csrf": csrf.group(1), "text": "hello"}, headers=fetch
            )
            assert "English · Polski · Română · اردو" in first.json()["added"]
            picked = await client.post(
                "/chat/send", data={"csrf": csrf.group(1), "text": "اردو"}, headers=fetch
            )
            assert catalog.text("ur", "option.continue") in picked.json()["controls"]
            page = await client.get("/chat")
    assert '<html lang="ur" dir="rtl">' in page.text
    assert f">{catalog.text('ur', 'web.exit')}</button>" in page.text  # the page's own words too
