"""Delivery of committed outbound messages, after the transaction that made them.

Each chat's messages go out in order, one at a time; a failure is retried with exponential back-off
(or the platform's own `retry_after`), and a message the platform refuses for good is marked failed
instead of blocking the chat for ever. A message is marked sent only after the platform accepted it.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Protocol, TypeVar

from sqlalchemy import Connection

from bot.render import from_dict
from flows.types import Outbound
from storage import steps
from storage.db import Database, WriteGate
from storage.store import Pending, Store

log = logging.getLogger("reportbot.outbox")

T = TypeVar("T")

LEASE = timedelta(seconds=60)
MAX_BACKOFF = 15 * 60.0
MAX_ATTEMPTS = 50  # about 12 hours at the longest back-off


class RetryLater(Exception):
    """The platform could not take the message now (network, 5xx, 429)."""

    def __init__(self, code: str, after: float | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.after = after


class GiveUp(Exception):
    """The platform will never accept this message (blocked by the user, chat gone, bad request)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Sender(Protocol):
    """A channel's way of sending one message. Raises RetryLater or GiveUp; returns platform ids."""

    channel: str

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]: ...


def backoff(attempts: int) -> float:
    """Seconds to wait before the next try: 2, 4, 8 ... up to 15 minutes, with jitter."""
    base = min(MAX_BACKOFF, 2.0 ** max(1, attempts))
    return base * (0.8 + 0.4 * random.random())


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


class Outbox:
    """Delivers what the service committed, through one sender per channel."""

    def __init__(self, db: Database, store: Store, *, lock: WriteGate | None = None) -> None:
        self.db = db
        self.store = store
        self._lock = lock  # the service's SQLite write gate, when there is one

    async def deliver_once(
        self, sender: Sender, *, limit: int = 50, older_than: timedelta = timedelta(0)
    ) -> DeliveryReport:
        """Send every message that is due now (one per chat per round), then record the results.

        `older_than` leaves alone messages due less than that long ago (a webhook may still be
        delivering them in its response).
        """
        report = DeliveryReport()
        due = datetime.now(UTC) - older_than
        cipher = self.store.cipher
        claimed = await self._write(  # the lease still runs LEASE from now
            lambda c: steps.claim_due(
                c, cipher, sender.channel, now=due, lease=LEASE + older_than, limit=limit
            )
        )
        # What happened to each message is written once for the round, in one transaction after the last
        # send (or when the round stops early): each chat has at most one message in a round, so a crash
        # before that write sends at most one message per chat again, as a crash right after a send did.
        results: list[Callable[[Connection], None]] = []
        try:
            for pending in claimed:
                try:
                    ids = await sender.send(pending.address, from_dict(pending.message), pending)
                except RetryLater as exc:
                    wait = exc.after if exc.after is not None else backoff(pending.attempts)
                    at = datetime.now(UTC) + timedelta(seconds=wait)
                    if pending.attempts >= MAX_ATTEMPTS:
                        results.append(partial(steps.mark_failed, msg_id=pending.id, at=at, error=exc.code))
                        report.failed += 1
                    else:
                        results.append(partial(steps.mark_retry, msg_id=pending.id, at=at, error=exc.code))
                        report.retried += 1
                    log.warning(
                        "delivery retry channel=%s attempt=%d error=%s",
                        sender.channel,
                        pending.attempts,
                        exc.code,
                    )
                    continue
                except GiveUp as exc:
                    at = datetime.now(UTC)
                    results.append(partial(steps.mark_failed, msg_id=pending.id, at=at, error=exc.code))
                    report.failed += 1
                    log.warning("delivery failed for good channel=%s error=%s", sender.channel, exc.code)
                    continue
                at = datetime.now(UTC)
                results.append(
                    partial(steps.mark_sent, cipher=cipher, ids=[pending.id], at=at, platform_ids=list(ids))
                )
                report.sent += 1
        finally:
            if results:
                await self._write(partial(_run_all, results))
        return report

    async def drain(
        self, sender: Sender, *, rounds: int = 1000, older_than: timedelta = timedelta(0)
    ) -> DeliveryReport:
        """Deliver until nothing is due now (each round sends the next message of each chat)."""
        total = DeliveryReport()
        for _ in range(rounds):
            got = await self.deliver_once(sender, older_than=older_than)
            total.sent += got.sent
            total.retried += got.retried
            total.failed += got.failed
            if got.sent == 0:
                break
        return total

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run one short write transaction on the database's step path, with the steps (see
        storage.db.Database.run_step and WriteGate)."""
        if self._lock is None:
            return await self.db.run_step(fn)
        async with self._lock.shared():
            return await self.db.run_step(fn)


def _run_all(writes: Sequence[Callable[[Connection], None]], conn: Connection) -> None:
    for write in writes:
        write(conn)
