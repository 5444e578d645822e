"""The bot's own notes, outside the questions, in the language of the person's conversation (issue 16):
a Telegram button pressed too late, the note to a group, the thank-you after a staff reply and the staff
reply itself, the "nothing more kept" limit, and the support services' words from config. English only
where no language is known. Each person here reports through the real service step and storage; only
the network edges are fake (the Bot API, the console's output)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.channels.console.chat import ConsoleSender
from bot.channels.telegram.send import Pacer
from bot.channels.telegram.webhook import TelegramChannel
from bot.channels.whatsapp.send import database_lookup, make_sender
from bot.config import Config, load_config
from bot.delivery import Outbox
from bot.render import as_text, to_dict
from bot.server import create_app
from bot.service import Envelope, Outcome, ReportService
from bot.staff import Staff
from flows import catalog, languages
from flows.types import Inbound, Outbound
from storage.db import Database
from storage.schema import upgrade
from tests.channels.telegram_app import SECRET, TELEGRAM_TOML
from tests.channels.whatsapp_edge import PERSON, TEMPLATE, WHATSAPP_TOML, FakeTwilio
from tests.conftest import PARTNERS_TOML, write_config
from tests.fakes.telegram_api import FakeBotAPI
from tests.languages import ALL

RLM = "\u200f"
ENABLED = '[languages]\nenabled = ["en", "pl", "ro", "ur"]\n'
STAFF_WORDS = "Hello, this is Sam. We have read your report."
THANKS = {"en": "thank you", "pl": "dziękuję", "ro": "mulțumesc", "ur": "شکریہ"}
STORY = {
    "en": "A man shouted at me at the bus stop.",
    "pl": "Mężczyzna krzyczał na mnie na przystanku autobusowym.",
    "ro": "Un bărbat a țipat la mine în stația de autobuz.",
    "ur": "ایک آدمی نے بس اسٹاپ پر مجھ پر چیخا۔",
}
# What the person answers at each question (an option by its label in their language, or typed words);
# any other question is skipped with `skip`, which works everywhere.
PLAN: dict[str, list[tuple[str, str]]] = {
    "welcome": [("key", "continue")],
    "safety": [("key", "no")],
    "role": [("key", "victim")],
    "story": [("text", "story"), ("key", "done")],
    "what": [("key", "verbal"), ("key", "done")],
    "why": [("key", "race"), ("key", "done")],
    "support": [("key", "no")],
    "consent": [("key", "none"), ("key", "done")],
    "review": [("key", "send")],
}


def readable(text: str) -> str:
    return text.replace(RLM, "")


def number(shown: str, label: str) -> str:
    """The number of the option shown as `N. label`."""
    for line in readable(shown).split("\n"):
        head, _, rest = line.partition(". ")
        if head.isdigit() and rest.removesuffix(" \u2713") == label:
            return head
    raise AssertionError(f"no option {label!r} in:\n{shown}")


def with_built_in_support(tmp_path: Path, database_url: str | None, extra: str = "") -> Config:
    """The test config without its own [[support]] table: the built-in list (bot/defaults/support.toml)."""
    path = write_config(tmp_path, ENABLED + extra, database_url=database_url)
    support = PARTNERS_TOML[PARTNERS_TOML.index("[[support]]") :]
    path.write_text(path.read_text(encoding="utf-8").replace(support, ""), encoding="utf-8")
    return load_config(path, env={})


class Person:
    """Someone on the console channel, talking to the real service step, one message at a time."""

    def __init__(self, service: ReportService, chat_id: str, channel: str = "console") -> None:
        self.service = service
        self.chat_id = chat_id
        self.channel = channel

    async def say(self, text: str) -> Outcome:
        return await self.service.handle(Envelope(self.channel, self.chat_id, Inbound(text=text)))

    async def report(self, locale: str, contact: str) -> tuple[str, str]:
        """A whole report in `locale` (chosen by its name in the welcome's list); (reference, the
        messages after sending)."""
        outcome = await self.say("hi")
        if locale != "en":
            outcome = await self.say(languages.own_name(locale))
        plan = {step: list(answers) for step, answers in {**PLAN, "contact": [("key", contact)]}.items()}
        for _ in range(60):
            shown = "\n\n".join(as_text(r) for r in outcome.replies)
            if outcome.reference is not None:
                return outcome.reference, readable(shown)
            assert outcome.step is not None, shown
            queue = plan.get(outcome.step) or [("text", "skip")]
            kind, value = queue.pop(0)
            if kind == "key":
                said = number(shown, catalog.text(locale, f"option.{value}"))
            else:
                said = STORY[locale] if value == "story" else value
            outcome = await self.say(said)
        raise AssertionError("the report never ended")


# ----- support services: config's words in the person's language -----------------------------------------


@pytest.mark.parametrize("locale", ALL)
async def test_the_support_list_after_sending_is_in_the_persons_language(
    installed: tuple[str, ...], tmp_path: Path, database_url: str | None, locale: str
) -> None:
    config = with_built_in_support(tmp_path, database_url)
    db = Database(config.database_url)
    await upgrade(db)
    try:
        _, done = await Person(ReportService(config, db), f"support-{locale}").report(locale, "anonymous")
    finally:
        await db.dispose()
    stop_hate = {
        "en": "Stop Hate UK, for anyone affected by hate, 24 hours: 0800 138 1625, or text 07717 989 025",
        "pl": "Stop Hate UK, dla: każdy, kogo dotknęła nienawiść, 24 godziny na dobę: "
        "0800 138 1625 albo SMS na 07717 989 025",
        "ro": "Stop Hate UK, pentru oricine este afectat de ură, 24 de ore pe zi: "
        "0800 138 1625 sau un SMS la 07717 989 025",
        "ur": "Stop Hate UK، نفرت سے متاثر ہر شخص، 24 گھنٹے کے لیے: 0800 138 1625، یا 07717 989 025 پر میسج کریں",
    }
    assert stop_hate[locale] in done
    if locale != "en":
        assert "anyone affected by hate" not in done and "every victim of crime" not in done


async def test_a_partner_named_in_polish_config_is_shown_by_that_name_and_not_to_others(
    installed: tuple[str, ...], tmp_path: Path, database_url: str | None
) -> None:
    polish = (
        '[service.pl]\noperator = "Rada Miasta"\n'
        "[[partners]]\n"
        'id = "housing"\nname = "Housing"\ndoes = "The housing team can help where you live."\n'
        '[partners.pl]\nname = "Mieszkania"\ndoes = "Zespół mieszkaniowy może pomóc tam, gdzie mieszkasz."\n'
    )
    config = with_built_in_support(tmp_path, database_url, polish)
    db = Database(config.database_url)
    await upgrade(db)
    try:
        service = ReportService(config, db)
        pl, en = Person(service, "partner-pl"), Person(service, "partner-en")
        await pl.say("hi")
        welcome_pl = readable(as_text((await pl.say("Polski")).replies[0]))
        welcome_en = as_text((await en.say("hi")).replies[0])
    finally:
        await db.dispose()
    assert "Rada Miasta" in welcome_pl and config.service.operator not in welcome_pl
    assert config.service.operator in welcome_en and "Rada Miasta" not in welcome_en
    # The consent question lists partners: the flow reads them from the same settings.
    settings = config.flow_settings()
    assert [p.name for p in settings.in_language("pl").partners][-1] == "Mieszkania"
    assert [p.name for p in settings.in_language("ro").partners][-1] == "Housing"


# ----- a staff reply, and the person's answer to it -----------------------------------------------------


@pytest.mark.parametrize("locale", ALL)
async def test_a_staff_reply_and_the_thank_you_for_answering_it_are_in_the_reports_language(
    installed: tuple[str, ...], make_config: Callable[..., Config], locale: str
) -> None:
    config = make_config(ENABLED)
    db = Database(config.database_url)
    await upgrade(db)
    out = io.StringIO()
    try:
        service = ReportService(config, db)
        person = Person(service, f"staff-{locale}")
        reference, _ = await person.report(locale, "chat")
        staff = Staff(config, db, who="tester", senders=lambda _: ConsoleSender(out, terminal=False))
        assert (await staff.reply(reference, STAFF_WORDS)).delivered
        answered = await person.say(THANKS[locale])
    finally:
        await db.dispose()
    shown = readable(out.getvalue())
    assert catalog.text(locale, "staff.reply", reference=reference, reply=STAFF_WORDS) in shown
    assert answered.reference is None and answered.step is None  # joined the report: no new one
    assert [readable(r.text) for r in answered.replies] == [
        catalog.text(locale, "service.reply_received", reference=reference)
    ]


# ----- the volume limit's last word ---------------------------------------------------------------------


@pytest.mark.parametrize("locale", ALL)
async def test_nothing_more_kept_is_said_in_the_conversations_language(
    installed: tuple[str, ...], make_config: Callable[..., Config], locale: str
) -> None:
    config = make_config(
        ENABLED + "[limits]\nmessages_per_second = 1000\nwindow_messages = 4\nwindow_kept = 6\n"
    )
    db = Database(config.database_url)
    await upgrade(db)
    try:
        # WhatsApp's step (its replies go in the webhook's answer): the console has no volume limit.
        person = Person(ReportService(config, db), f"flood-{locale}", channel="whatsapp")
        await person.say("hi")
        await person.say(languages.own_name(locale) if locale != "en" else "continue")
        seen = [readable(r.text) for _ in range(12) for r in (await person.say("x")).replies]
    finally:
        await db.dispose()
    told = [t for t in seen if t.startswith(catalog.text(locale, "limits.nothing_more_kept", minutes=0)[:12])]
    assert len(told) == 1, seen
    english = catalog.text("en", "limits.nothing_more_kept", minutes=0)[:12]
    assert locale == "en" or not any(t.startswith(english) for t in seen)


# ----- Telegram: a button pressed too late, and a group ----------------------------------------------------


async def telegram(config: Config) -> tuple[FakeBotAPI, TelegramChannel, Any, Database]:
    api = FakeBotAPI()
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    channel = TelegramChannel(config, service, api.bot(), pacer=Pacer(per_chat=0, overall=0), interval=0.05)
    return api, channel, create_app(config, service, [channel.routes()]), db


async def settled(channel: TelegramChannel, db: Database) -> None:
    async with asyncio.timeout(10):
        while True:
            await channel.idle()
            async with db.transaction() as s:
                if await channel.outbox.store.pending_count(s, "telegram") == 0:
                    return
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("locale", ALL)
async def test_a_button_pressed_too_late_is_answered_in_the_conversations_language(
    installed: tuple[str, ...], make_config: Callable[..., Config], locale: str
) -> None:
    config = make_config(TELEGRAM_TOML + ENABLED)
    api, channel, app, db = await telegram(config)
    chat = 616161
    # The app says another language: the conversation's own (chosen by name) is the one that counts.
    api.language_codes[chat] = "pl" if locale != "pl" else "ro"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test") as client,
    ):
        for text in ("/start", languages.own_name(locale)):
            assert (
                await client.post("/telegram/webhook", json=api.text(chat, text), headers=headers)
            ).is_success
            await settled(channel, db)
        keyboard = next(m for m in reversed(api.screen(chat)) if m.buttons)
        press = api.press(chat, keyboard.message_id, keyboard.buttons[0][1])
        press["callback_query"]["message"]["date"] = int(time.time()) - 3 * 24 * 3600  # three days ago
        response = await client.post("/telegram/webhook", json=press, headers=headers)
    await db.dispose()
    answer = response.json()
    assert answer["method"] == "answerCallbackQuery"
    assert readable(answer["text"]) == catalog.text(locale, "telegram.old_button")


@pytest.mark.parametrize("locale", ALL)
async def test_a_group_is_told_in_the_app_language_of_who_wrote_there(
    installed: tuple[str, ...], make_config: Callable[..., Config], locale: str
) -> None:
    config = make_config(TELEGRAM_TOML + ENABLED)
    api, channel, app, db = await telegram(config)
    group = -100888
    api.language_codes[abs(group)] = locale
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test") as client,
    ):
        assert (
            await client.post("/telegram/webhook", json=api.group_text(group, "/start"), headers=headers)
        ).is_success
        await channel.idle()
    await db.dispose()
    [sent] = api.called("sendMessage")
    assert sent["chat_id"] == group
    assert readable(sent["text"]) == catalog.text(locale, "telegram.private_only")


async def test_a_group_whose_app_language_is_not_offered_is_told_in_english(
    installed: tuple[str, ...], make_config: Callable[..., Config]
) -> None:
    config = make_config(TELEGRAM_TOML + ENABLED)
    api, channel, app, db = await telegram(config)
    group = -100889
    api.language_codes[abs(group)] = "de"
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t.test") as client,
    ):
        await client.post("/telegram/webhook", json=api.group_text(group, "/start"), headers=headers)
        await channel.idle()
    await db.dispose()
    [sent] = api.called("sendMessage")
    assert sent["text"] == catalog.text("en", "telegram.private_only")


# ----- WhatsApp's REST side (staff follow-ups, redelivery) -------------------------------------------------


@pytest.mark.parametrize("locale", ALL)
async def test_quick_exit_redelivered_by_rest_says_how_to_clear_the_chat_in_the_persons_language(
    installed: tuple[str, ...], make_config: Callable[..., Config], locale: str
) -> None:
    config = make_config(WHATSAPP_TOML + ENABLED)
    db = Database(config.database_url)
    await upgrade(db)
    twilio = FakeTwilio()
    try:
        service = ReportService(config, db)
        person = Person(service, PERSON, channel="whatsapp")
        await person.say("Salam")
        if locale != "en":
            await person.say(languages.own_name(locale))
        await person.say("exit")
        # What the webhook's answer could not carry goes by the REST client (redelivery).
        await Outbox(db, service.store).drain(make_sender(config, database_lookup(db), twilio))
    finally:
        await db.dispose()
    bodies = [readable(r["data"]["Body"]) for r in twilio.requests if "Body" in r["data"]]
    cleared = [b for b in bodies if catalog.text(locale, "whatsapp.clear_chat") in b]
    assert len(cleared) == 1, bodies
    assert locale == "en" or catalog.text("en", "whatsapp.clear_chat") not in "\n".join(bodies)


@pytest.mark.parametrize(
    ("locale", "template"), [("pl", "HX" + "p1" * 16), ("ro", TEMPLATE), ("en", TEMPLATE)]
)
async def test_after_24_hours_the_template_approved_in_the_reports_language_is_sent(
    make_config: Callable[..., Config], locale: str, template: str
) -> None:
    polish = "HX" + "p1" * 16
    config = make_config(
        WHATSAPP_TOML
        + f'followup_content_sid = "{TEMPLATE}"\n[whatsapp.pl]\nfollowup_content_sid = "{polish}"\n'
    )
    db = Database(config.database_url)
    await db.create_schema()
    twilio = FakeTwilio()
    try:
        service = ReportService(config, db)
        async with db.transaction() as s:
            report = await service.store.create_report(
                s,
                reference="HC-7K3Q-9XPD",
                channel="whatsapp",
                clear={"role": "victim", "anonymous": False, "language": locale},
                sealed={"contact": {"in_chat": True}},
                chat_key=service.chat_key("whatsapp", PERSON),
                reply_address=PERSON,
                conversation_id=None,
                at=datetime.now(UTC) - timedelta(days=2),
            )
            report.last_inbound_at = datetime.now(UTC) - timedelta(days=2)
            await service.store.enqueue(
                s,
                channel="whatsapp",
                chat_key=service.chat_key("whatsapp", PERSON),
                address=PERSON,
                messages=[to_dict(Outbound(text=STAFF_WORDS, step="staff"))],
                report_id=report.id,
            )
        assert (
            await Outbox(db, service.store).drain(make_sender(config, database_lookup(db), twilio))
        ).sent == 1
    finally:
        await db.dispose()
    [request] = twilio.requests
    assert request["data"]["ContentSid"] == template and "Body" not in request["data"]
