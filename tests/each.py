"""One test item for many cases (every line of a corpus, every message of a catalog), every case checked.

Thousands of one-line cases were thousands of pytest items, and pytest's own work for each (set-up,
reporting, the xdist round trip) cost more than the checks. `check_each` runs every case's check in one
item, goes on past a case that fails, and then fails naming every case that failed and why, so a
failure still says which line it was, and every other line is still checked.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from typing import TypeVar

import pytest

T = TypeVar("T")


def check_each(cases: Iterable[T], check: Callable[[T], object], name: Callable[[T], str] = repr) -> int:
    """Call `check` on every case; fail listing each case that raised (its name and the error). Returns
    how many were checked (at least one: an empty list of cases fails too)."""
    failures: list[str] = []
    count = 0
    for case in cases:
        count += 1
        try:
            check(case)
        except AssertionError as exc:
            failures.append(f"{name(case)}:\n    {str(exc).replace(chr(10), chr(10) + '    ')}")
        except Exception:
            trace = traceback.format_exc().rstrip().replace("\n", "\n    ")
            failures.append(f"{name(case)}:\n    {trace}")
    if count == 0:
        pytest.fail("no cases to check", pytrace=False)
    if failures:
        pytest.fail(f"{len(failures)} of {count} cases failed:\n\n" + "\n\n".join(failures), pytrace=False)
    return count
