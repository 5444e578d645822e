"""Delivery of committed outbound messages, after the transaction that made them.

Each chat's messages go out in order, one at a time, and each send's result is committed as soon as the
send returns: a message is claimed alone (a short lease), sent, and marked sent, retried or failed in
its own small transaction. A crash can so repeat at most the one message that was in flight.

Failures stay with their message. A permanent refusal (GiveUp), or any exception a sender was not
written to raise, marks that message failed with an enumerated reason, audited and logged by reason
only, and the round goes on with the other chats. Every claim counts an attempt, and a message whose
attempts are used up is failed when it is next claimed, whatever ended its earlier tries.

A platform that is down (network errors, 5xx) is not hammered and not forgotten: the first such
failure pauses the channel, and while it is paused only one message at a time is tried, as a probe,
after a capped, jittered back-off (at most PROBE_CAP seconds), so a platform that has recovered gets
its first message within a few seconds. Probes during an outage do not use up a message's attempts.
A `retry_after` from the platform is honoured for the whole channel.

`Delivery` is the one loop that runs the outbox in the background for every channel, with the channel's
sender: at once when kicked after a commit, every `interval` seconds for retries, and when a paused
channel may be probed again. A sender that can delete messages (`bot.channels.base.DeletesMessages`)
gets quick exit and its housekeeping from here, not from its own code (`KeptMessages`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from bot.channels.base import DeletesMessages, Sender
from bot.errors import GiveUp, RetryLater
from bot.render import from_dict
from flows.types import Outbound
from storage import kept
from storage import outbox as steps  # the delivery functions (storage.outbox)
from storage.crypto import Cipher
from storage.db import Database, WriteGate
from storage.store import Pending, Store

if TYPE_CHECKING:
    from bot.service import ReportService

log = logging.getLogger("reportbot.outbox")

T = TypeVar("T")

LEASE = timedelta(seconds=60)  # one send, its parts and their pacing, well within this
MAX_ATTEMPTS = 50
PROBE_FIRST = 0.5  # seconds before the first probe of a platform that failed
PROBE_CAP = 4.0  # the longest wait between probes: a recovered platform hears from us within 5 s


# What a sender raises when the platform, the network or a database is away for now: not the message's
# fault, so it waits (see _send_one).
PASSING: tuple[type[Exception], ...] = (RetryLater, OSError, TimeoutError, SQLAlchemyError)


def backoff(failures: int) -> float:
    """Seconds to wait before the next try: 0.5, 1, 2, 4, then 4, with jitter (never above PROBE_CAP)."""
    base = min(PROBE_CAP, PROBE_FIRST * 2.0 ** max(0, failures - 1))
    return base * (0.75 + 0.25 * random.random())


def unexpected(exc: BaseException) -> str:
    """The failure reason for an exception a sender was not written to raise: its class name only."""
    name = type(exc).__name__
    return "unexpected-" + "".join(c for c in name if c.isalnum())[:40]


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # why messages failed or wait, by reason


def _log_round(channel: str, report: DeliveryReport) -> None:
    """One line for a round that met a failure or a wait (reasons only, never content)."""
    if report.failed or report.retried:
        log.info(
            "delivery round channel=%s sent=%d retried=%d failed=%d reasons=%s",
            channel,
            report.sent,
            report.retried,
            report.failed,
            ",".join(f"{k}:{v}" for k, v in sorted(report.reasons.items())),
        )


@dataclass
class _Channel:
    """What this process knows about a platform's health: consecutive failures and when to try again."""

    failures: int = 0
    resume_at: datetime | None = None


class Outbox:
    """Delivers what the service committed, through one sender per channel."""

    def __init__(
        self,
        db: Database,
        store: Store,
        *,
        lock: WriteGate | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: timedelta = LEASE,
    ) -> None:
        self.db = db
        self.store = store
        self._lock = lock  # the service's SQLite write gate, when there is one
        self._clock = clock  # tests give a fake one
        self.lease = lease
        self._channels: dict[str, _Channel] = {}

    def resume_in(self, channel: str) -> float:
        """Seconds until the channel may be tried again (0 when it is not paused)."""
        state = self._channels.get(channel)
        if state is None or state.resume_at is None:
            return 0.0
        return max(0.0, (state.resume_at - self._clock()).total_seconds())

    async def deliver_once(
        self,
        sender: Sender,
        *,
        limit: int = 50,
        older_than: timedelta = timedelta(0),
        chat_key: str | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> DeliveryReport:
        """Send the next due message of each chat (up to `limit` chats), each result committed at once.

        `older_than` leaves alone messages never tried that are younger than that (a webhook may still
        be delivering them in its response). `chat_key` delivers one chat only. The round stops early
        when the platform is down (see the module's notes) or `keep_going()` turns false.
        """
        report = DeliveryReport()
        channel = sender.channel
        state = self._channels.setdefault(channel, _Channel())
        if state.resume_at is not None and self._clock() < state.resume_at:
            return report
        now = self._clock()
        ids = await self._write(
            lambda c: steps.due_messages(
                c, channel, now=now, fresh_before=now - older_than, limit=limit, chat_key=chat_key
            )
        )
        cipher = self.store.cipher
        for msg_id in ids:
            if not keep_going():
                break
            now = self._clock()
            claimed = await self._write(
                partial(
                    steps.claim_one,
                    cipher=cipher,
                    msg_id=msg_id,
                    now=now,
                    lease=self.lease,
                    max_attempts=MAX_ATTEMPTS,
                    fresh_before=now - older_than,
                )
            )
            if isinstance(claimed, str):
                if claimed != steps.TAKEN:
                    self._failed(report, channel, claimed)
                continue
            if not await self._send_one(sender, claimed, state, report):
                break  # the platform is down or asked us to wait: the others keep their turn
        _log_round(channel, report)
        return report

    async def _send_one(
        self, sender: Sender, pending: Pending, state: _Channel, report: DeliveryReport
    ) -> bool:
        """Send one claimed message and commit what happened. False when the round should stop."""
        channel = sender.channel
        try:
            ids = await sender.send(pending.address, from_dict(pending.message), pending)
        except PASSING as exc:
            code = exc.code if isinstance(exc, RetryLater) else type(exc).__name__.lower()
            after = exc.after if isinstance(exc, RetryLater) else None
            # A probe while the platform is known to be down does not count against the message.
            attempts = pending.attempts - 1 if state.failures > 0 and after is None else None
            state.failures += 1
            wait = after if after is not None else backoff(state.failures)
            at = self._clock() + timedelta(seconds=wait)
            state.resume_at = at
            await self._write(
                partial(steps.mark_retry, msg_id=pending.id, at=at, error=code, attempts=attempts)
            )
            report.retried += 1
            report.reasons[code] += 1
            log.warning(
                "delivery retry channel=%s attempt=%d error=%s wait=%.1fs",
                channel,
                pending.attempts,
                code,
                wait,
            )
            return False
        except GiveUp as exc:
            await self._fail(pending, channel, exc.code)
            self._failed(report, channel, exc.code)
            return True
        except Exception as exc:  # a bug or a malformed message: that message fails, the others go on
            reason = unexpected(exc)
            await self._fail(pending, channel, reason)
            self._failed(report, channel, reason)
            return True
        state.failures = 0
        state.resume_at = None
        await self._write(_mark_sent(self.store.cipher, sender, pending, ids, self._clock()))
        report.sent += 1
        return True

    async def _fail(self, pending: Pending, channel: str, reason: str) -> None:
        at = self._clock()
        await self._write(
            partial(steps.fail_for_good, msg_id=pending.id, channel=channel, at=at, reason=reason)
        )

    @staticmethod
    def _failed(report: DeliveryReport, channel: str, reason: str) -> None:
        report.failed += 1
        report.reasons[reason] += 1
        log.warning("delivery failed for good channel=%s reason=%s", channel, reason)

    async def drain(
        self,
        sender: Sender,
        *,
        rounds: int = 1000,
        older_than: timedelta = timedelta(0),
        chat_key: str | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> DeliveryReport:
        """Deliver until nothing is due now (each round sends the next message of each chat)."""
        total = DeliveryReport()
        for _ in range(rounds):
            got = await self.deliver_once(
                sender, older_than=older_than, chat_key=chat_key, keep_going=keep_going
            )
            total.sent += got.sent
            total.retried += got.retried
            total.failed += got.failed
            total.reasons.update(got.reasons)
            if got.sent == 0 and got.failed == 0:
                break
        return total

    async def session(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Run `fn` in one transaction of the async engine, alone with the SQLite writer when there is one
        (quick exit's reads and deletes of kept message ids)."""
        if self._lock is None:
            async with self.db.transaction() as s:
                return await fn(s)
        async with self._lock, self.db.transaction() as s:
            return await fn(s)

    async def write(self, fn: Callable[[Connection], T]) -> T:
        """One short write transaction beside the outbox's (evidence downloads: bot.fetch)."""
        return await self._write(fn)

    async def _write(self, fn: Callable[[Connection], T]) -> T:
        """Run one short write transaction on the database's step path, with the steps (see
        storage.db.Database.run_step and WriteGate)."""
        if self._lock is None:
            return await self.db.run_step(fn)
        async with self._lock.shared():
            return await self.db.run_step(fn)


def _mark_sent(
    cipher: Cipher, sender: Sender, pending: Pending, ids: Sequence[str], at: datetime
) -> Callable[[Connection], None]:
    """The write that marks a message sent. A sender that keeps the ids itself (KeptMessages: quick
    exit) writes them in the same transaction; otherwise they stay on the outbox row."""
    if isinstance(sender, KeptMessages):
        also = sender.sent(pending, ids, at)
        return partial(steps.mark_sent, cipher=cipher, ids=[pending.id], at=at, also=also)
    return partial(steps.mark_sent, cipher=cipher, ids=[pending.id], at=at, platform_ids=list(ids))


async def mark_answered(service: ReportService, ids: Sequence[int]) -> None:
    """Replies a channel carried in its own HTTP response (TwiML, a web page) went out with it: their
    outbox rows are done. A failure is logged, not raised: the response is sent anyway (a reply shown
    twice later is better than one never shown)."""
    if not ids:
        return
    write = partial(steps.mark_sent, cipher=service.cipher, ids=list(ids), at=datetime.now(UTC))
    gate = service.sqlite_writer
    try:
        async with gate.shared() if gate is not None else contextlib.nullcontext():
            await service.db.run_step(write)
    except Exception as exc:
        log.error("could not mark replies sent error=%s", type(exc).__name__)


# -- what the loop adds around a sender that can delete messages ---------------------------------------


class KeptMessages:
    """Quick exit and its housekeeping for a sender that can delete messages (Telegram).

    Every message the sender sends has its platform ids kept (storage.kept, under the chat's quick-exit
    pseudonym), as the step keeps the person's. Before a message that asks to clear the chat, the chat's kept ids
    go to the sender's `delete`; the message's words are then chosen from what was done: its own text
    ("Chat closed.") only when every message the chat holds was deleted, otherwise the flow's line for
    what the person must still delete (`Outbound.not_cleared`). The ids sent are kept, and those used
    forgotten, in the transaction that marks the message sent (`sent`), so a send retried later deletes
    again and says the same, and a crash loses no id of a message that went out but was not marked. `forget_old` drops ids
    too old to delete at all, leaving the chat a marker that older messages exist."""

    def __init__(self, sender: DeletesMessages, outbox: Outbox) -> None:
        self.sender = sender
        self.channel = sender.channel
        self.outbox = outbox
        self._used: dict[int, Sequence[int]] = {}  # outbox id -> kept rows its quick exit used

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        if message.clear_chat:
            message, self._used[pending.id] = await self.clear(address, pending.chat_key, message)
        return await self.sender.send(address, message, pending)

    def sent(self, pending: Pending, ids: Sequence[str], at: datetime) -> Callable[[Connection], None]:
        """What the outbox writes with the send's result, in the same transaction: the ids sent, kept
        under the chat's quick-exit pseudonym, and the kept rows a quick exit used, forgotten."""
        cipher, channel = self.outbox.store.cipher, self.channel
        exit_key = kept.exit_key(cipher, channel, pending.address)
        used = self._used.pop(pending.id, ())

        def write(conn: Connection) -> None:
            kept.forget(conn, used)
            kept.keep(conn, cipher, channel, exit_key, list(ids), at=at)

        return write

    async def clear(self, address: str, chat_key: str, message: Outbound) -> tuple[Outbound, Sequence[int]]:
        """Delete what the platform still lets a bot delete; the message with the words for what was
        done, and the kept rows used."""
        store, channel = self.outbox.store, self.channel
        now, window = datetime.now(UTC), self.sender.deletable_for
        exit_key = kept.exit_key(store.cipher, channel, address)
        found = await self.outbox.session(
            lambda s: store.kept_for_exit(s, channel, exit_key, now=now, window=window)
        )
        left = await self.sender.delete(address, found.sure, chat_key, unsure=found.unsure)
        deleted = len(found.sure) + len(found.unsure) - len(left)
        missed = len(left) + found.too_old
        log.info("chat cleared channel=%s deleted=%d left=%d older=%s", channel, deleted, missed, found.older)
        return exit_words(message, deleted, cleared=not missed and not found.older), found.rows

    async def forget_old(self) -> None:
        """Drop kept message ids too old for the platform to delete (quick exit could not use them)."""
        store, channel = self.outbox.store, self.channel
        before = datetime.now(UTC) - kept.USELESS_AFTER
        await self.outbox.session(lambda s: store.forget_messages(s, channel, before=before))


def exit_words(message: Outbound, deleted: int, *, cleared: bool) -> Outbound:
    """Quick exit's message once the deletion is done: its own words when the chat was cleared, else the
    flow's line for what is left (nothing deleted, one, or `{count}` messages)."""
    if cleared or len(message.not_cleared) != 3:
        return message
    none, one, many = message.not_cleared
    text = none if deleted <= 0 else one if deleted == 1 else many.replace("{count}", str(deleted))
    return replace(message, text=text)


# -- the one delivery loop -------------------------------------------------------------------------------

HOUSEKEEPING_EVERY = 600.0  # seconds between housekeeping rounds (purge of message ids too old to use)


class Delivery:
    """Runs the outbox in the background for one channel's sender: at once when kicked after a commit
    (and at start), every `interval` seconds for retries, and when a paused channel may be probed again.

    `older_than` leaves alone messages never tried that are younger than that: a channel that answers in
    the webhook response (WhatsApp) delivers its replies itself and leaves here only what it could not.
    Stopping lets the message in flight finish and its result be committed (one cut off between the
    platform accepting it and being marked sent would be sent again), then stops before the next."""

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        *,
        interval: float = 2.0,
        older_than: timedelta = timedelta(0),
        housekeeping: Sequence[Callable[[], Awaitable[None]]] = (),
        after_round: Sequence[Callable[[Callable[[], bool]], Awaitable[object]]] = (),
    ) -> None:
        self.outbox = outbox
        self.after_round = list(after_round)  # e.g. evidence downloads (bot.fetch), after each round
        self.channel = sender.channel
        self.sender: Sender = sender
        self.housekeeping = list(housekeeping)
        if isinstance(sender, DeletesMessages):
            kept = KeptMessages(sender, outbox)
            self.sender = kept
            self.housekeeping.append(kept.forget_old)
        self.interval = interval
        self.older_than = older_than
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last_housekeeping: float | None = None

    def kick(self) -> None:
        """Deliver now (called after a step's commit)."""
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._wake.set()  # what an earlier run left in the outbox goes out at once
        self._task = asyncio.create_task(self._run(), name=f"{self.channel}-delivery")

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        while not self._stopping:
            # The platform down: wake for the next probe rather than the next interval (see above).
            paused = self.outbox.resume_in(self.channel)
            wait = min(self.interval, paused) if paused > 0 else self.interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()
            if self._stopping:
                break
            try:
                await self._round()
            except Exception as exc:  # a database hiccup must not end delivery for good
                log.warning("delivery round failed channel=%s error=%s", self.channel, type(exc).__name__)

    async def _round(self) -> None:
        got = await self.outbox.drain(
            self.sender, older_than=self.older_than, keep_going=lambda: not self._stopping
        )
        if self.older_than and (got.sent or got.failed):
            log.info("redelivered channel=%s sent=%d failed=%d", self.channel, got.sent, got.failed)
        for task in self.after_round:
            await task(lambda: not self._stopping)
        now = asyncio.get_running_loop().time()
        if self._last_housekeeping is None or now - self._last_housekeeping >= HOUSEKEEPING_EVERY:
            self._last_housekeeping = now
            for hook in self.housekeeping:
                await hook()
