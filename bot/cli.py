"""`reportbot`: the one command for people chatting locally, the server, and staff tools.

Every command takes `--config PATH`. A bad configuration stops the command at once with one line that
names the key, and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

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
    db_sub.add_parser("upgrade", parents=[common], help="create or upgrade the schema")
    return parser


# Libraries that log request URLs (with the bot token) or payloads (with chat ids and text) below WARNING;
# transitions logs every callback of every step at INFO, which costs time and says nothing useful.
QUIET_LOGGERS = ("httpx", "httpcore", "telegram", "hpack", "transitions")


def _logging(verbose: bool, default: int = logging.WARNING) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else default,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
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
    if args.command == "chat":
        from bot.console import run_console

        _logging(args.verbose)
        return asyncio.run(run_console(config))
    if args.command == "flow":
        from flows.report import REPORT_FLOW

        sys.stdout.write(flow_markdown(REPORT_FLOW.mermaid()))
        return 0
    if args.command == "serve":
        _logging(args.verbose, logging.INFO)
        return serve(config, host=args.host, port=args.port)
    if args.command == "poll":
        _logging(args.verbose, logging.INFO)
        return asyncio.run(_poll(config))
    if args.command == "telegram":
        _logging(args.verbose)
        return asyncio.run(_telegram_setup(config, args.telegram_command))
    if args.command == "db" and args.db_command == "upgrade":
        _logging(args.verbose, logging.INFO)
        return asyncio.run(_db_upgrade(config))
    raise AssertionError(f"unhandled command {args.command}")


def flow_markdown(mermaid: str) -> str:
    """docs/flow.md: the diagram as generated from the flow's state machine."""
    return (
        "# The reporting conversation\n\n"
        "Generated by `reportbot flow` from the state machine itself; a test fails when this file is stale.\n\n"
        "```mermaid\n" + mermaid.rstrip("\n") + "\n```\n"
    )


async def _db_upgrade(config: Config) -> int:
    from storage.db import Database

    db = Database(config.database_url)
    try:
        await db.create_schema()
    finally:
        await db.dispose()
    print("reportbot: database schema is up to date")
    return 0


def _need_telegram(config: Config) -> None:
    if not config.telegram_enabled:
        raise ConfigError("telegram.token", "is required (from BotFather; or set REPORTBOT_TELEGRAM__TOKEN)")


async def _poll(config: Config) -> int:
    import signal

    from bot.service import ReportService
    from bot.telegram import run_polling
    from storage.db import Database

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
        if db.is_sqlite:
            await db.create_schema()
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


def build_app(config: Config):  # type: ignore[no-untyped-def]
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
    return create_app(config, service, channels, create_schema=db.is_sqlite)


def serve(config: Config, *, host: str | None = None, port: int | None = None) -> int:
    """Run the app under uvicorn."""
    import uvicorn

    try:
        app = build_app(config)
    except ConfigError as exc:
        print(f"reportbot: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    uvicorn.run(
        app,
        host=host or config.server.host,
        port=port or config.server.port,
        log_level="info",
        access_log=False,  # access logs would carry nothing useful and could carry query strings
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
