"""Staff commands: export reports, reply to a reporter, review a report, count reports."""

from bot.staff.context import (
    COMMANDS,
    ReplyResult,
    Selection,
    Staff,
    StaffError,
    actor,
    months_between,
    normalise_reference,
    register,
    run,
    selection,
)

__all__ = [
    "COMMANDS",
    "ReplyResult",
    "Selection",
    "Staff",
    "StaffError",
    "actor",
    "months_between",
    "normalise_reference",
    "register",
    "run",
    "selection",
]
