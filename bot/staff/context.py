"""What every staff command works with: the deployment, its database, its keys, and who is acting.

A refusal raises `StaffError` with the reason in plain words and changes nothing; the registry prints it as
one line, `reportbot COMMAND: reason`, and exits 1.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from zoneinfo import ZoneInfo

from bot.channels import sender_for
from bot.channels.base import Sender
from bot.config import Config
from bot.errors import StaffError as StaffError  # re-exported: commands import it from here
from flows import catalog
from storage.crypto import Cipher, DecryptError
from storage.db import Database
from storage.evidence import EvidenceStore
from storage.schema import ensure_schema
from storage.store import Store

SETTLE_WITHIN = 20.0  # seconds a reply waits for another process that is sending it to confirm it

UNDECRYPTABLE = (
    "a stored value could not be decrypted with any key in security.encryption_keys; "
    "nothing was written or sent"
)


def actor() -> str:
    """Who is running the command, for the audit trail: $REPORTBOT_ACTOR, $SUDO_USER, else the login."""
    name = (os.environ.get("REPORTBOT_ACTOR") or os.environ.get("SUDO_USER") or "").strip()
    if name:
        return name[:64]
    try:
        return getpass.getuser()[:64]
    except (KeyError, OSError):
        return "unknown"


def code_label(code: str, locale: str = catalog.DEFAULT_LOCALE) -> str:
    """The label of an option code in English (staff read English; `--lang` asks for another language's
    catalog), else the code in words."""
    key = f"option.{code}"
    if catalog.has(locale, key):
        return catalog.text(locale, key)
    return code.replace("_", " ").replace("-", " ").capitalize()


def labeller(locale: str | None) -> Callable[[str], str]:
    """`code_label` in one language (`--lang CODE` on export and stats); refused if there is no catalog."""
    chosen = locale or catalog.DEFAULT_LOCALE
    if chosen not in catalog.CATALOGS:
        names = ", ".join(sorted(catalog.CATALOGS))
        raise StaffError(f"--lang: there is no catalog {chosen!r} (there are: {names})")
    return lambda code: code_label(code, chosen)


def language_name(locale: str | None) -> str:
    """A report's language for staff: "Polski (pl)"; English as "English"."""
    code = locale or catalog.DEFAULT_LOCALE
    own = catalog.text(code, "language.name") if code in catalog.CATALOGS else code
    return own if code == catalog.DEFAULT_LOCALE else f"{own} ({code})"


def lang_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lang",
        metavar="CODE",
        help="show the answers people chose in this catalog's language (default: English)",
    )


class StaffContext:
    """One deployment as a staff command sees it: configuration, database, keys, time zone, actor."""

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        who: str | None = None,
        senders: Callable[[str], Sender] | None = None,
    ) -> None:
        self.config = config
        self.db = db
        # How to reach each channel; tests give the same senders over a fake network edge.
        self.senders = senders or (lambda channel: sender_for(config, channel))
        self.cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
        self.store = Store(self.cipher)
        self.evidence = EvidenceStore(config.data_path, config.security.encryption_keys)
        self.zone = ZoneInfo(config.service.timezone)
        self.who = who or actor()
        self.settle_within = SETTLE_WITHIN


@asynccontextmanager
async def opened(config: Config) -> AsyncIterator[StaffContext]:
    """The deployment, its database checked: local SQLite is brought up to date; PostgreSQL must have had
    `reportbot db upgrade` (SchemaError otherwise). The database is closed when the block ends."""
    db = Database(config.database_url)
    try:
        await ensure_schema(db, auto_upgrade=db.is_sqlite)
        yield StaffContext(config, db)
    finally:
        await db.dispose()


@contextmanager
def undecryptable_refused() -> Iterator[None]:
    """A value no configured key decrypts (a wrong or missing key, a damaged row) stops the command with
    a line naming the setting to check, never the value."""
    try:
        yield
    except DecryptError:
        raise StaffError(UNDECRYPTABLE) from None
