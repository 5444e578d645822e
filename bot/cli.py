"""`reportbot`: the one command for people chatting locally, the server, and staff tools.

Every command takes `--config PATH`. A bad configuration stops the command at once with one line that
names the key, and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette

from bot.config import Config, ConfigError, load_config

log = logging.getLogger("reportbot")

EXIT_CONFIG = 2
NO_KEYS = {"flow"}


def _common(top: bool) -> argparse.ArgumentParser:
    # The options work before or after the command; below it, an absent option must not hide one given above.
    common = argparse.ArgumentParser(add_help=False)
    default_config = None if top else argparse.SUPPRESS
    default_verbose = False if top else argparse.SUPPRESS
    common.add_argument(
        "--config",
        metavar="PATH",
        default=default_config,
        help="config file (default: $REPORTBOT_CONFIG or ./config.toml)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=default_verbose,
        help="log more (never message content)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _common(top=False)
    parser = argparse.ArgumentParser(
        prog="reportbot", description=__doc__.splitlines()[0], parents=[_common(top=True)]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("chat", parents=[common], help="talk to the bot here, in the terminal (or pipe a script)")
    sub.add_parser("flow", parents=[common], help="print the conversation as a Mermaid diagram")

    serve = sub.add_parser("serve", parents=[common], help="run the webhook server")
    serve.add_argument("--host", help="address to listen on (default: server.host)")
    serve.add_argument("--port", type=int, help="port to listen on (default: server.port)")

    sub.add_parser("poll", parents=[common], help="run the Telegram bot by polling (no public URL needed)")
    tg = sub.add_parser("telegram", parents=[common], help="Telegram set-up")
    tg_sub = tg.add_subparsers(dest="telegram_command", required=True, metavar="ACTION")
    tg_sub.add_parser(
        "set-webhook",
        parents=[common],
        help="register telegram.public_url + /telegram/webhook (once per deployment)",
    )
    tg_sub.add_parser("delete-webhook", parents=[common], help="remove the webhook (before `reportbot poll`)")

    db = sub.add_parser("db", parents=[common], help="database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", parents=[common], help="create or upgrade the schema to this version's")
    down = db_sub.add_parser("downgrade", parents=[common], help="take the schema back to a revision")
    down.add_argument("revision", help='a revision id, or "base" to drop every table')
    db_sub.add_parser("current", parents=[common], help="show the schema revision and row counts")

    sub.add_parser(
        "purge",
        parents=[common],
        help="delete drafts and reports past their retention (service.*_retention_days); for cron",
    )
    erase = sub.add_parser("erase", parents=[common], help="delete one report and everything linked to it")
    erase.add_argument("reference", metavar="REF", help="the report's reference, e.g. HC-7K3Q-9XPD")
    rotate = sub.add_parser(
        "rotate-keys", parents=[common], help="re-encrypt everything under the newest encryption key"
    )
    rotate.add_argument("--batch-size", type=int, default=500, help="rows per transaction (default 500)")
    audit = sub.add_parser("audit", parents=[common], help="list audit events (never report content)")
    audit.add_argument("--since", metavar="DATE", help="only events on or after this date (YYYY-MM-DD)")
    audit.add_argument("--action", help="only this action (export, reply, erase, purge, rotate-keys, ...)")
    audit.add_argument("--reference", metavar="REF", help="only events that touched this report")
    audit.add_argument("--limit", type=int, default=1000, help="at most this many events (default 1000)")

    from bot import staff

    staff.register(sub, common)
    return parser


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
    args = _parser().parse_args(argv)
    try:
        # Only commands that touch stored data need keys; the others must not create any.
        config = load_config(args.config, create_keys=args.command not in NO_KEYS)
    except ConfigError as exc:
        print(f"reportbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return _run(args, config)
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, config: Config) -> int:
    _logging(args.verbose, logging.INFO if args.command in ("serve", "poll") else logging.WARNING)
    if args.command == "db":
        return asyncio.run(_db(config, args))
    if args.command in ("purge", "erase", "rotate-keys", "audit"):
        return asyncio.run(_maintenance(config, args))
    if args.command == "chat":
        from bot.console import run_console

        return asyncio.run(run_console(config))
    if args.command == "flow":
        from flows.report import REPORT_FLOW

        sys.stdout.write(flow_markdown(REPORT_FLOW.mermaid()))
        return 0
    if args.command == "serve":
        return serve(config, host=args.host, port=args.port)
    if args.command == "poll":
        return asyncio.run(_poll(config))
    if args.command == "telegram":
        return asyncio.run(_telegram_setup(config, args.telegram_command))
    from bot import staff

    if args.command in staff.COMMANDS:
        return staff.run(args, config)
    raise AssertionError(f"unhandled command {args.command}")


def flow_markdown(mermaid: str) -> str:
    """docs/flow.md: the diagram as generated from the flow's state machine."""
    return (
        "# The reporting conversation\n\n"
        "Generated by `reportbot flow` from the state machine itself; a test fails when this file is stale.\n\n"
        "```mermaid\n" + mermaid.rstrip("\n") + "\n```\n"
    )


async def _db(config: Config, args: argparse.Namespace) -> int:
    from storage import schema
    from storage.db import Database
    from storage.maintenance import count_rows

    db = Database(config.database_url)
    try:
        if args.db_command == "upgrade":
            before = await schema.schema_state(db)
            state = await schema.upgrade(db)
            if before.current == state.current:
                print(f"reportbot: database schema is up to date (revision {state.current})")
            else:
                print(
                    f"reportbot: database schema upgraded from {before.current or 'empty'} to {state.current}"
                )
        elif args.db_command == "downgrade":
            state = await schema.downgrade(db, args.revision)
            print(f"reportbot: database schema is now at {state.current or 'base (no tables)'}")
        else:
            state = await schema.schema_state(db)
            print(f"revision {state.current or 'none'} (this reportbot: {state.head})")
            if state.has_tables and state.known:
                for table, n in (await count_rows(db)).items():
                    print(f"{table} {n}")
    except schema.SchemaError as exc:
        print(f"reportbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        await db.dispose()
    return 0


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


async def _maintenance(config: Config, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from bot.staff import StaffError, normalise_reference
    from bot.staff import actor as staff_actor
    from storage import maintenance
    from storage.crypto import Cipher
    from storage.schema import SchemaError
    from storage.store import Store

    # A reference is read the way the chat reads it (flows.references), before anything is opened.
    try:
        reference = normalise_reference(args.reference) if getattr(args, "reference", None) else None
    except StaffError as exc:
        print(f"reportbot {args.command}: {exc}", file=sys.stderr)
        return 1

    try:
        db = await open_database(config)
    except SchemaError as exc:
        print(f"reportbot: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    store = Store(Cipher(config.security.encryption_keys, config.security.pseudonym_key))
    actor = staff_actor()
    try:
        if args.command == "purge":
            counts = await maintenance.purge(
                db,
                store,
                draft_retention_days=config.service.draft_retention_days,
                report_retention_days=config.service.report_retention_days,
                actor=actor,
            )
            print("reportbot: purged " + ", ".join(f"{k}={v}" for k, v in counts.as_dict().items()))
            log.info("purge drafts=%d reports=%d", counts.drafts, counts.reports)
            return 0
        if args.command == "erase":
            assert reference is not None  # REF is a required argument
            erased = await maintenance.erase_report(db, store, reference, actor=actor)
            if erased is None:
                print(f"reportbot: no report {reference}", file=sys.stderr)
                return 1
            print(
                f"reportbot: erased {reference}: report=1 transcript_entries={erased.transcript_entries} "
                f"outbox_messages={erased.outbox_messages}"
            )
            return 0
        if args.command == "rotate-keys":
            if args.batch_size < 1:
                print("reportbot: --batch-size must be at least 1", file=sys.stderr)
                return 1
            rotated = await maintenance.rotate_keys(db, store, actor=actor, batch_size=args.batch_size)
            stale = await maintenance.stale_values(db, store)
            print(
                f"reportbot: re-encrypted {rotated.rotated} values ({rotated.current} already under the "
                f"newest key); {stale} left under older keys"
            )
            if stale == 0 and len(config.security.encryption_keys) > 1:
                print("reportbot: older keys can now be removed from security.encryption_keys")
            return 0 if stale == 0 else 1
        since = None
        if args.since:
            try:
                since = datetime.fromisoformat(args.since).replace(tzinfo=UTC)
            except ValueError:
                print(f"reportbot: --since {args.since!r} is not a date like 2026-01-31", file=sys.stderr)
                return 1
        events = await maintenance.audit_events(
            db, since=since, action=args.action, reference=reference, limit=args.limit
        )
        for e in events:
            refs = ",".join(e.refs or ([e.reference] if e.reference else [])) or "-"
            print(
                f"{e.at.astimezone(UTC).isoformat(timespec='seconds')}\t{e.actor}\t{e.action}\t"
                f"count={e.count}\trefs={refs}\t{e.detail or ''}".rstrip()
            )
        if not events:
            print("reportbot: no audit events", file=sys.stderr)
        return 0
    finally:
        await db.dispose()


def _need_telegram(config: Config) -> None:
    if not config.telegram_enabled:
        raise ConfigError("telegram.token", "is required (from BotFather; or set REPORTBOT_TELEGRAM__TOKEN)")


async def _poll(config: Config) -> int:
    import signal

    from bot.service import ReportService
    from bot.telegram import run_polling
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
    from bot.telegram import delete_webhook, set_webhook, webhook_url

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


def build_app(config: Config) -> Starlette:
    """The Starlette app with every configured channel mounted."""
    from bot.service import ReportService
    from bot.web import ChannelRoutes, create_app
    from storage.db import Database

    db = Database(config.database_url)
    service = ReportService(config, db)
    channels: list[ChannelRoutes] = []
    if config.telegram_enabled:
        from bot.telegram import telegram_routes

        channels.append(telegram_routes(config, service))
    if config.whatsapp_enabled:
        from bot.whatsapp import whatsapp_routes

        channels.append(whatsapp_routes(config, service))
    if config.web.enabled:
        from bot.webchat import webchat_routes

        channels.append(webchat_routes(config, service))
    return create_app(config, service, channels)


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
        uvicorn.run("bot.asgi:app_factory", factory=True, workers=config.server.workers, **options)
    else:
        uvicorn.run(app, **options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
