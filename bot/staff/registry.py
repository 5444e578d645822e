"""The registry of `reportbot` commands. Every module or package in `bot/staff/commands/` is one staff command.

A command module declares `COMMAND = Command(...)`: its name, one line of help, its options and its run
function. `bot/cli.py` builds the parser from `staff_commands()` and the channel commands and runs the one
chosen, so a new staff command is one new module in `bot/staff/commands/` and nothing else (docs/staff.md).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import pkgutil
import sys
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from bot.config import Config
from bot.staff.context import StaffError
from storage.schema import SchemaError

COMMANDS_PACKAGE = "bot.staff.commands"
EXIT_REFUSED = 1
EXIT_CONFIG = 2

Run = Callable[[argparse.Namespace, Config], int | Coroutine[Any, Any, int]]
Options = Callable[[argparse.ArgumentParser], None]


def no_options(parser: argparse.ArgumentParser) -> None:
    """For a command that takes nothing beyond the common options."""


@dataclass(frozen=True)
class Command:
    """One `reportbot` command."""

    name: str  # as typed: `reportbot NAME`
    help: str  # its line in `reportbot --help`
    run: Run  # (arguments, configuration) -> exit code; a coroutine runs in its own event loop
    options: Options = no_options  # adds the command's own arguments to its parser
    order: int = 1000  # its place in `reportbot --help`, smallest first (then by name)
    needs_keys: bool = True  # False: it reads no stored data, so starting it must not create keys
    log_level: int = logging.WARNING  # what it logs without -v (-v always means DEBUG)

    def invoke(self, args: argparse.Namespace, config: Config) -> int:
        """Run the command. A refusal (StaffError) is one line and exit 1; a database whose schema this
        version cannot use is one line and exit 2."""
        try:
            result = self.run(args, config)
            return asyncio.run(result) if not isinstance(result, int) else result
        except StaffError as exc:
            print(f"reportbot {self.name}: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        except SchemaError as exc:
            print(f"reportbot: {exc}", file=sys.stderr)
            return EXIT_CONFIG


def staff_commands(package: str = COMMANDS_PACKAGE) -> list[Command]:
    """Every command in `package`: each of its modules and sub-packages declares one `COMMAND`."""
    root = importlib.import_module(package)
    found = []
    for info in pkgutil.iter_modules(root.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        command = getattr(module, "COMMAND", None)
        if not isinstance(command, Command):
            raise TypeError(f"{module.__name__} is in {package} but declares no COMMAND = Command(...)")
        found.append(command)
    return found


def common_options(*, top: bool = False) -> argparse.ArgumentParser:
    """--config and -v, which every command takes before or after its name (`top`: given before it)."""
    common = argparse.ArgumentParser(add_help=False)
    # Below the command, an absent option must not hide one given above it.
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


def add_commands(parser: argparse.ArgumentParser, commands: Iterable[Command]) -> None:
    """Each command as a sub-command of `parser`, in `order`."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = common_options()
    for command in sorted(commands, key=lambda c: (c.order, c.name)):
        command.options(sub.add_parser(command.name, parents=[common], help=command.help))


def actions(parser: argparse.ArgumentParser, dest: str) -> Callable[[str, str], argparse.ArgumentParser]:
    """For a command with actions (`reportbot db upgrade`): returns add(name, help) -> the action's parser,
    whose choice is stored in `dest`."""
    sub = parser.add_subparsers(dest=dest, required=True, metavar="ACTION")
    common = common_options()

    def add(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help)

    return add
