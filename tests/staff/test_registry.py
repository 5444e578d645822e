"""The staff command registry: a command is one module in bot/staff/commands/, found without touching cli.py."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bot.staff.commands
from bot.cli import main
from bot.staff.registry import staff_commands

DOCS = Path(__file__).resolve().parents[2] / "docs" / "staff.md"

# A command written the way docs/staff.md says, kept outside the source tree.
CASE = """
import argparse

from bot.config import Config
from bot.staff.context import StaffError
from bot.staff.registry import Command
from bot.staff.selection import normalise_reference


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REF")
    parser.add_argument("--case", required=True, help="the partner's case number")


async def run(args: argparse.Namespace, config: Config) -> int:
    if not args.case.isdigit():
        raise StaffError(f"--case: {args.case!r} is not a case number")
    print(f"{normalise_reference(args.reference)} is case {args.case} at {config.service.name}")
    return 0


COMMAND = Command("case", "link a report to a partner's case number", run, options=_options)
"""


@pytest.fixture
def extra_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder that bot/staff/commands/ also reads, as if its modules had been added there."""
    folder = tmp_path / "more_commands"
    folder.mkdir()
    monkeypatch.setattr(bot.staff.commands, "__path__", [*bot.staff.commands.__path__, str(folder)])
    yield folder
    for name in ("case", "no_command"):
        sys.modules.pop(f"bot.staff.commands.{name}", None)


def test_a_new_command_module_is_listed_parsed_and_run_without_touching_cli(
    extra_commands: Path, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (extra_commands / "case.py").write_text(CASE, encoding="utf-8")

    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert re.search(r"^\s+case\s+link a report to a partner's case number$", listed, re.M), listed

    assert main(["--config", str(config_path), "case", "hc7k3q9xpd", "--case", "4471"]) == 0
    assert capsys.readouterr().out == "HC-7K3Q-9XPD is case 4471 at Report Hate\n"

    assert main(["--config", str(config_path), "case", "HC-7K3Q-9XPD", "--case", "x1"]) == 1
    assert capsys.readouterr().err == "reportbot case: --case: 'x1' is not a case number\n"


def test_a_module_that_declares_no_command_is_named(extra_commands: Path) -> None:
    (extra_commands / "no_command.py").write_text("VALUE = 1\n", encoding="utf-8")
    with pytest.raises(TypeError, match=r"bot\.staff\.commands\.no_command .*declares no COMMAND"):
        staff_commands()


def test_reportbot_help_lists_the_commands_in_the_same_order_as_before(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = re.findall(r"^    (\S+)\s", capsys.readouterr().out, re.M)
    assert listed == [
        "chat",
        "flow",
        "serve",
        "poll",
        "telegram",
        "db",
        "purge",
        "erase",
        "rotate-keys",
        "audit",
        "export",
        "reply",
        "review",
        "link",
        "unlink",
        "stats",
    ]


def test_every_staff_command_is_in_the_staff_guide_and_every_one_there_exists() -> None:
    table = re.findall(r"^\| `reportbot ([a-z-]+)", DOCS.read_text(encoding="utf-8"), re.M)
    assert sorted(table) == sorted(c.name for c in staff_commands())


def test_only_commands_that_read_stored_data_create_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("REPORTBOT_")]:
        monkeypatch.delenv(name)
    assert main(["flow"]) == 0
    assert capsys.readouterr().out.startswith("# The reporting conversation\n")
    assert not (tmp_path / "data").exists(), "drawing the flow must leave no key file behind"

    assert main(["audit"]) == 0
    assert capsys.readouterr().err.endswith("reportbot: no audit events\n")
    assert (tmp_path / "data" / "keys.toml").is_file()
