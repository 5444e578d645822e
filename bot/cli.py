"""`reportbot`: the one command for people chatting locally, the server, and staff tools.

Every command takes `--config PATH`. A bad configuration stops the command at once with one line that
names the key, and exit code 2.

This module only wires: the parser is built from the channel commands below and the staff commands that
bot/staff/registry.py finds in bot/staff/commands/ (one module each), and the chosen one is run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from bot.config import Config, ConfigError, load_config

EXIT_CONFIG = 2

if TYPE_CHECKING:
    from bot.staff.registry import Command


def _channel_commands() -> list[Command]:
    """The commands that run the bot itself; their functions are below."""
    from bot.staff.registry import Command

    return [
        Command("chat", "talk to the bot here, in the terminal (or pipe a script)", _chat, order=10),
        Command(
            "serve",
            "run the webhook server",
            lambda args, config: serve(config, host=args.host, port=args.port),
            options=_serve_options,
            order=30,
            log_level=logging.INFO,
        ),
        Command(
            "poll",
            "run the Telegram bot by polling (no public URL needed)",
            lambda args, config: _poll(config),
            order=40,
            log_level=logging.INFO,
        ),
        Command(
            "telegram",
            "Telegram set-up",
            lambda args, config: _telegram_setup(config, args.telegram_command),
            options=_telegram_options,
            order=50,
        ),
    ]


def _commands() -> dict[str, Command]:
    """Every command: the channel commands here and the staff commands of bot/staff/commands/."""
    from bot.staff.registry import staff_commands

    return {command.name: command for command in [*_channel_commands(), *staff_commands()]}


def _parser(commands: Iterable[Command]) -> argparse.ArgumentParser:
    from bot.staff.registry import add_commands, common_options

    parser = argparse.ArgumentParser(
        prog="reportbot", description=__doc__.splitlines()[0], parents=[common_options(top=True)]
    )
    add_commands(parser, commands)
    return parser


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (default: server.host)")
    parser.add_argument("--port", type=int, help="port to listen on (default: server.port)")


def _telegram_options(parser: argparse.ArgumentParser) -> None:
    from bot.staff.registry import actions

    add = actions(parser, "telegram_command")
    add("set-webhook", "register telegram.public_url + /telegram/webhook (once per deployment)")
    add("delete-webhook", "remove the webhook (before `reportbot poll`)")


# Libraries that log request URLs (with the bot token) or payloads (with chat ids and text) below WARNING;
# transitions logs every callback of every step at INFO, which costs time and says nothing useful.
QUIET_LOGGERS = ("httpx", "httpcore", "telegram", "hpack", "transitions")


def _logging(verbose: bool, default: int = logging.WARNING) -> None:
    from bot.logs import install

    install(logging.DEBUG if verbose else default)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `reportbot` command."""
    commands = _commands()
    args = _parser(commands.values()).parse_args(argv)
    command = commands[args.command]
    try:
        # Only commands that touch stored data need keys; the others must not create any.
        config = load_config(args.config, create_keys=command.needs_keys)
    except ConfigError as exc:
        print(f"reportbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        _logging(args.verbose, command.log_level)
        return command.invoke(args, config)
    except KeyboardInterrupt:
        return 130


async def _chat(args: argparse.Namespace, config: Config) -> int:
    from bot.channels.console.chat import run_console

    return await run_console(config)


async def open_database(config: Config):  # type: ignore[no-untyped-def]
    """The database for a command, checked: SQLite is brought to head; anything else must be at head.

    Raises SchemaError with one line for the operator.
    """
    from storage.db import Database
    from storage.schema import ensure_schema

    db = Database(config.database_url)
    try:
        await ensure_schema(db, auto_upgrade=db.is_sqlite)
    except BaseException:
        await db.dispose()
        raise
    return db


def _need_telegram(config: Config) -> None:
    if not config.telegram_enabled:
        raise ConfigError("telegram.token", "is required (from BotFather; or set REPORTBOT_TELEGRAM__TOKEN)")


async def _poll(config: Config) -> int:
    import signal

    from bot.channels.telegram.webhook import run_polling
    from bot.service import ReportService
    from storage.db import Database
    from storage.schema import SchemaError, ensure_schema

    try:
        _need_telegram(config)
    except ConfigError as exc:
        print(f"reportbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    db = Database(config.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            await ensure_schema(db, auto_upgrade=db.is_sqlite)
        except SchemaError as exc:
            print(f"reportbot: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        problem = await key_problem(config, db)
        if problem is not None:
            print(f"reportbot: {problem}", file=sys.stderr)
            return EXIT_CONFIG
        print("reportbot: polling Telegram; Ctrl-C stops", file=sys.stderr)
        return await run_polling(config, ReportService(config, db), stop=stop)
    finally:
        await db.dispose()


async def _telegram_setup(config: Config, action: str) -> int:
    from bot.channels.telegram.api import delete_webhook, set_webhook, webhook_url

    try:
        _need_telegram(config)
        if action == "set-webhook":
            webhook_url(config)
    except ConfigError as exc:
        print(f"reportbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if action == "set-webhook":
            url = await set_webhook(config)
            print(f"reportbot: Telegram will post updates to {url}")
        else:
            await delete_webhook(config)
            print("reportbot: webhook removed; `reportbot poll` can run now")
    except Exception as exc:  # the message may carry the token: name the class only
        print(f"reportbot: Telegram refused ({type(exc).__name__}); check telegram.token", file=sys.stderr)
        return 1
    return 0


async def check_schema(config: Config) -> str | None:
    """None when the app may start on this database (SQLite is upgraded first), else one line why not."""
    from storage.schema import SchemaError

    try:
        db = await open_database(config)
    except SchemaError as exc:
        return str(exc)
    try:
        return await key_problem(config, db)
    finally:
        await db.dispose()


async def key_problem(config: Config, db: Any) -> str | None:
    """None when the configured keys open the stored data, else one line naming the key to check."""
    from storage.crypto import Cipher
    from storage.maintenance import keys_open_stored_data
    from storage.store import Store

    store = Store(Cipher(config.security.encryption_keys, config.security.pseudonym_key))
    if await keys_open_stored_data(db, store):
        return None
    return (
        "config error: security.encryption_keys: no key decrypts the data already stored; "
        "was a key removed or replaced? (the newest key goes first, older ones stay until rotate-keys)"
    )


def serve(config: Config, *, host: str | None = None, port: int | None = None) -> int:
    """Run the app under uvicorn, after checking the database schema."""
    import uvicorn

    from bot.server import build_app

    problem = asyncio.run(check_schema(config))
    if problem is not None:
        print(f"reportbot: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        app = build_app(config)
    except ConfigError as exc:
        print(f"reportbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    options: dict[str, Any] = {
        "host": host or config.server.host,
        "port": port or config.server.port,
        "log_level": "info",
        "log_config": None,  # our handlers and redacting filter (bot.logs), not uvicorn's own
        "access_log": False,  # access logs would carry nothing useful and could carry query strings
    }
    if config.server.workers > 1:
        # Worker processes build their own app from the same config file and environment.
        if config.source != "built-in defaults":
            os.environ["REPORTBOT_CONFIG"] = config.source
        uvicorn.run("bot.server:app_factory", factory=True, workers=config.server.workers, **options)
    else:
        uvicorn.run(app, **options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
