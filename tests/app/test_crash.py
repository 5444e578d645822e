"""Crash consistency, bounded for `make test`: the real `reportbot serve` killed with SIGKILL under load
a dozen times loses no acknowledged message or report; the same check catches a server that answers
before it commits. bench/crash.py runs the long version (200 kills and more)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import crash

pytestmark = pytest.mark.slow  # real servers killed under load: `make test` runs them, `make test-fast` not


def test_sigkill_under_load_loses_nothing_that_was_acknowledged(tmp_path: Path) -> None:
    final, cycles = crash.run(tmp_path, kills=12, people=12, seed=1, say=False)
    assert len(cycles) == 12
    assert final.acked_messages > 300  # the load really ran (each kill lands mid-load)
    assert final.acked_reports > 0
    assert final.integrity == "ok"
    assert (final.lost_messages, final.lost_receipts, final.bad_reports) == (0, 0, 0)
    assert all(c.ok for c in cycles)


def test_the_check_catches_a_server_that_acknowledges_before_commit(tmp_path: Path) -> None:
    final, cycles = crash.run(
        tmp_path, kills=4, control=True, people=12, seed=2, say=False, stop_when_caught=True
    )
    assert not cycles[-1].ok
    assert final.lost_messages > 0
