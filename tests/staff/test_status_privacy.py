"""No leak by reference (issue 13, item 1): `status REFERENCE` from a chat that is not the report's own shows
the status only; staff messages need the report's own chat or the secret code shown once at sending.
Look-ups that find nothing, or give a wrong code, are counted per chat and for all chats, with a lockout."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from bot.cli import main
from bot.config import Config, load_config
from bot.service import ReportService
from storage.db import Database
from storage.models import AuditEvent, LookupFailure, Report
from tests.conftest import every_backend, raw_database_bytes
from tests.reporting import ANONYMOUS, script
from tests.reporting import converse as converse_lines
from tests.staff.conftest import Made
from tests.staff.conversation import converse

LATER = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
WORDS = "Please call Sam on 07700 900123 about your report."
CODE = re.compile(r"Your secret code is ([a-z0-9]{4}-[a-z0-9]{4})\.")
HINT = (
    "Messages from our team are shown only in the chat the report came from. Somewhere else, type "
    "status, then your reference, then your secret code."
)
WAIT = (
    "Too many of those did not work. Please wait a while, then try again. If you are in danger now, call 999."
)


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


def after(screen: str, typed: str) -> str:
    """What the bot answered to one line (up to the next thing the person typed)."""
    return screen.split(f"> {typed}\n\n", 1)[1].split("\n> ", 1)[0]


def code_of(made_screen: str) -> str:
    found = CODE.search(made_screen)
    assert found is not None, "the secret code is shown at sending, beside the reference"
    return found.group(1)


async def test_a_stranger_with_the_reference_sees_the_status_but_never_staff_messages(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made
) -> None:
    ref = made.refs[0]  # contact here in the chat: staff can reply
    assert await asyncio.to_thread(cli, staff_config_path, "reply", ref, WORDS) == 0

    stranger = await converse(staff_config, staff_db, [f"status {ref}"], chat_id="stranger", at=LATER)
    answer = after(stranger.screen, f"status {ref}")
    assert answer.startswith(f"Report {ref} is with us, not read yet.")
    assert HINT in answer
    assert WORDS not in stranger.screen and "07700 900123" not in stranger.screen

    # The reporter's own chat sees the message, with no hint.
    own = await converse(staff_config, staff_db, [f"status {ref}"], chat_id="chat-a", at=LATER)
    assert f"A message from our staff: {WORDS}" in own.screen and HINT not in own.screen


async def test_the_secret_code_opens_staff_messages_from_another_chat(
    staff_config_path: Path, staff_config: Config, staff_db: Database, made: Made
) -> None:
    ref = made.refs[0]
    code = code_of(made.a.screen)
    assert code_of(made.b.screen) != code and code_of(made.c.screen) != code, "each report has its own"
    assert await asyncio.to_thread(cli, staff_config_path, "reply", ref, WORDS) == 0

    typed = f"status {ref.lower()} {code.upper().replace('-', ' ')}"  # case and spacing do not matter
    other = await converse(staff_config, staff_db, [typed], chat_id="new-phone", at=LATER)
    assert f"A message from our staff: {WORDS}" in after(other.screen, typed)

    # A wrong code reveals nothing more than no code, and counts as a failure.
    wrong = f"status {ref} {'abcd-efgh' if code != 'abcd-efgh' else 'hgfe-dcba'}"
    other = await converse(staff_config, staff_db, [wrong], chat_id="new-phone", at=LATER)
    answer = after(other.screen, wrong)
    assert WORDS not in answer and HINT in answer
    async with staff_db.transaction() as s:
        failures = {r.scope: r.failures for r in (await s.execute(select(LookupFailure))).scalars()}
        hashes = [r.code_hash for r in (await s.execute(select(Report))).scalars()]
    assert failures["all"] == 1 and sorted(failures.values()) == [1, 1]
    assert "new-phone" not in "".join(failures), "the chat is counted under a pseudonym"

    # The code is kept only as a keyed hash: not in the database, the WAL or its shared memory.
    assert all(h and h.startswith("hmac$") for h in hashes)
    raw = raw_database_bytes(staff_config)
    assert code.encode() not in raw and code.replace("-", "").encode() not in raw


async def test_failed_look_ups_lock_a_chat_out_then_everyone_but_reporters(
    staff_config_path: Path, staff_db: Database, made: Made
) -> None:
    path = staff_config_path
    path.write_text(
        path.read_text().replace(
            "[security]", "[limits]\nstatus_failures_per_chat = 3\nstatus_failures_total = 5\n\n[security]"
        )
    )
    config = load_config(path, env={})
    ref = made.refs[0]
    guesses = [f"status HC-2222-{n}{n}{n}{n}" for n in (2, 3, 4)]
    guesser = await converse(config, staff_db, [*guesses, f"status {ref}"], chat_id="guesser", at=LATER)
    assert [after(guesser.screen, g).split("\n\n")[0] for g in guesses] == [
        "We could not find that reference."
    ] * 3
    # Locked out: even a reference that exists gets only "wait", nothing about the report.
    locked = after(guesser.screen, f"status {ref}")
    assert locked.startswith(WAIT) and ref not in locked

    # Another chat still looks up; two more failures reach the limit for all chats together.
    other = await converse(
        config,
        staff_db,
        ["status HC-2222-5555", "status HC-2222-6666", f"status {ref}"],
        chat_id="other",
        at=LATER,
    )
    assert after(other.screen, "status HC-2222-5555").startswith("We could not find that reference.")
    assert after(other.screen, f"status {ref}").startswith(WAIT)

    # The reporter's own chat is never locked out.
    own = await converse(config, staff_db, [f"status {ref}"], chat_id="chat-a", at=LATER)
    assert after(own.screen, f"status {ref}").startswith(f"Report {ref} is with us")

    async with staff_db.transaction() as s:
        events = list(
            (await s.execute(select(AuditEvent).where(AuditEvent.action == "status-lockout"))).scalars()
        )
    assert [(e.actor, e.detail.split()[0], e.count, e.reference) for e in events] == [
        ("service", "scope=chat", 3, None),
        ("service", "scope=all", 5, None),
    ]


@every_backend
async def test_codes_and_lockouts_hold_on_both_databases(
    db: Database, make_config: Callable[..., Config]
) -> None:
    config = make_config("[limits]\nstatus_failures_per_chat = 2")
    service = ReportService(config, db)
    outcomes = await converse_lines(service, script(config, ANONYMOUS), chat_id="reporter")
    ref = outcomes[-1].reference
    assert ref is not None
    shown = "\n".join(r.text for r in outcomes[-1].replies)
    code = code_of(shown)

    async def ask(text: str, chat: str = "stranger") -> str:
        [outcome] = await converse_lines(service, [text], chat_id=chat, start=LATER)
        return "\n\n".join(r.text for r in outcome.replies)

    assert HINT not in await ask(f"status {ref} {code}")  # the right code: nothing withheld, no failure
    assert HINT in await ask(f"status {ref}")
    assert (await ask("status HC-2222-2222")).startswith("We could not find that reference.")
    assert HINT in await ask(f"status {ref} zzzz-zzzz")  # the second failure: the chat is locked out now
    assert (await ask(f"status {ref} {code}")).startswith(WAIT)
    assert (await ask(f"status {ref}", chat="someone-else")).startswith(f"Report {ref} is")


def scrypt_hash(pseudonym_key: str, code: str, salt: bytes) -> str:
    """A code's hash as reports sent before `hmac$` stored it: scrypt (2^12, 8, 1) over an HMAC-SHA256
    under the pseudonym key of the normalised code."""
    keyed = hmac.new(pseudonym_key.encode(), f"status-code\x00{code}".encode(), hashlib.sha256).digest()
    digest = hashlib.scrypt(keyed, salt=salt, n=2**12, r=8, p=1, dklen=32)
    return f"scrypt${2**12}$8$1${salt.hex()}${digest.hex()}"


async def test_a_code_stored_with_the_old_scrypt_hash_still_opens_staff_messages(
    db: Database, config: Config
) -> None:
    service = ReportService(config, db)
    outcomes = await converse_lines(service, script(config, ANONYMOUS), chat_id="reporter")
    ref = outcomes[-1].reference
    assert ref is not None
    # As if sent before the change, with the code k7mq-4xtd hashed with scrypt.
    stored = scrypt_hash(config.security.pseudonym_key, "k7mq4xtd", bytes(range(16)))
    async with db.transaction() as s:
        await s.execute(update(Report).where(Report.reference == ref).values(code_hash=stored))

    async def ask(text: str) -> str:
        [outcome] = await converse_lines(service, [text], chat_id="new-phone", start=LATER)
        return "\n\n".join(r.text for r in outcome.replies)

    assert HINT in await ask(f"status {ref} zzzz-zzzz")  # a wrong code against the old hash: withheld
    opened = await ask(f"status {ref} K7MQ 4XTD")
    assert opened.startswith(f"Report {ref} is") and HINT not in opened
