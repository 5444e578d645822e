"""Staff commands: export reports, reply to a reporter, review a report, count them, and maintenance.

- `commands/`: one module (or package) per `reportbot` command, each declaring `COMMAND` (its options and
  its run function); `registry.py` finds them, so `bot/cli.py` never names one.
- `context.py`: what every command works with (configuration, database, keys, who is acting, StaffError).
- `selection.py`: which reports a command works on (a reference, days, a partner).

Each command reads or changes reports through storage/ and leaves an audit event (who, what, which
report, how many; never content). A refusal raises `StaffError` with the reason in plain words and
changes nothing. Messages to reporters go through the outbox and the channel's sender, like every
other message the service sends.
"""

from __future__ import annotations

from bot.staff.commands.export import export_reports
from bot.staff.commands.reply import ReplyResult, send_reply
from bot.staff.commands.review import set_status
from bot.staff.commands.stats import count, counts_table, months_between
from bot.staff.context import StaffContext, StaffError, actor, code_label
from bot.staff.selection import Selection, normalise_reference, selection


class Staff(StaffContext):
    """The report commands of one deployment, for Python callers (tests, benches): each method is the
    command's own function, given this deployment."""

    export = export_reports
    reply = send_reply
    review = set_status
    stats = count


__all__ = [
    "ReplyResult",
    "Selection",
    "Staff",
    "StaffContext",
    "StaffError",
    "actor",
    "code_label",
    "counts_table",
    "months_between",
    "normalise_reference",
    "selection",
]
