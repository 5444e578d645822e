"""Delivery of committed outbound messages, after the transaction that made them.

Each chat's messages go out in order, one at a time. Two ways in, one loop:

- A step's replies (Telegram) are claimed in the step's own transaction, when nothing of the chat
  waits before them, and handed to the loop after its commit (`Delivery.reserve` / `hand`): sent at
  once, with no second commit before the send. At most `window` steps' replies wait in memory, and
  none while the outbox has a backlog: then they wait in the outbox (the database is the queue).
- Everything else is claimed from the outbox by rounds: a batch of each chat's oldest due message
  (conversation replies before staff follow-ups, then oldest first) in one commit.

Each send's result (sent, retry, failed) joins the next batch of results: one commit for all that
are waiting, started at once when the database is free. A crash between a send and the commit of its
result repeats that send when the claim's lease runs out (at least once); a crash before the send
loses nothing, for the same reason. Claimed messages that were not sent (a stop, an outage) are
handed back at once, without counting an attempt.

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
from collections import Counter, deque
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
# Sends whose result may wait for its commit at one time: a crash repeats at most these (each send waits
# for the commit of earlier results when this many are waiting). At Telegram's 25 a second this costs
# nothing while a commit takes under 80 ms; 1 is the old exposure (one a kill) at half the throughput
# under load (bench/step.py), 3 repeated 0.8 a kill in bench/crash.py (docs/performance.md).
MAX_UNRECORDED = 2
RESULT_TRIES = 5  # commits of a batch of results tried before the lease is left to resend them


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
    claimed: int = 0  # messages (and failures) the round's claim found due
    sent: int = 0
    retried: int = 0
    failed: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # why messages failed or wait, by reason

    def add(self, other: DeliveryReport) -> None:
        """Count another round's figures in (the total of several rounds)."""
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.failed += other.failed
        self.reasons.update(other.reasons)

    @property
    def idle(self) -> bool:
        """The round found nothing due, or sent and failed nothing (the platform waits): stop for now."""
        return self.claimed == 0 or (self.sent == 0 and self.failed == 0)


def _all(batch: Sequence[Callable[[Connection], object]], conn: Connection) -> None:
    """Several results in one transaction."""
    for fn in batch:
        fn(conn)


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


@dataclass(frozen=True)
class Round:
    """What one delivery round (Outbox.deliver_once) takes and how it paces its sends.

    `limit`: the chats whose next message it sends, at most. `older_than` leaves alone messages never
    tried that are younger than that (a webhook may still be delivering them in its response).
    `chat_key` delivers one chat only. `per_chat` leaves a chat alone until that many seconds after its
    last sent message (whichever worker sent it). `between` runs before each send (the loop sends the
    replies steps handed over first). The round stops early when `keep_going()` turns false.
    """

    limit: int = 50
    older_than: timedelta = timedelta(0)
    chat_key: str | None = None
    per_chat: float = 0.0
    between: Callable[[], Awaitable[object]] | None = None
    keep_going: Callable[[], bool] = lambda: True

    def due(self, now: datetime) -> steps.Due:
        """The round's choice of messages as storage takes it."""
        quiet = now - timedelta(seconds=self.per_chat) if self.per_chat > 0 else None
        return steps.Due(
            fresh_before=now - self.older_than, limit=self.limit, chat_key=self.chat_key, quiet_since=quiet
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
        self._results: list[Callable[[Connection], object]] = []  # results waiting for their commit
        self._unrecorded = 0  # results recorded and not committed yet (waiting or in the commit)
        self._flusher: asyncio.Task[None] | None = None

    def resume_in(self, channel: str) -> float:
        """Seconds until the channel may be tried again (0 when it is not paused)."""
        state = self._channels.get(channel)
        if state is None or state.resume_at is None:
            return 0.0
        return max(0.0, (state.resume_at - self._clock()).total_seconds())

    async def deliver_once(self, sender: Sender, round_: Round = Round()) -> DeliveryReport:
        """Send the next due message of each chat (up to `round_.limit` chats; see Round): the batch is
        claimed in one transaction, each message sent in turn, and the results committed together (one
        commit for many; the round returns once they are on disk).

        The round stops early when the platform is down (see the module's notes) or
        `round_.keep_going()` turns false; what it claimed and did not send is handed back at once.
        """
        report = DeliveryReport()
        channel = sender.channel
        state = self._channels.setdefault(channel, _Channel())
        if state.resume_at is not None and self._clock() < state.resume_at:
            return report
        now = self._clock()
        claimed = await self._claim_due(channel, now, round_.due(now))
        report.claimed = len(claimed)
        todo = [c for c in claimed if isinstance(c, Pending)]
        for reason in (c for c in claimed if isinstance(c, str) and c != steps.TAKEN):
            self._failed(report, channel, reason)
        await self._send_batch(sender, todo, state, report, round_)
        await self.flush()
        _log_round(channel, report)
        return report

    async def _claim_due(self, channel: str, now: datetime, which: steps.Due) -> list[Pending | str]:
        """Claim the round's batch. On a SQLite file the due messages are found beside the writer thread
        (the search once walked every unsent row and held up every step on the writer: 40-90 ms with
        26,000 unsent; it reads one head a chat now, storage.outbox.due_messages) and only the claims
        join a group commit; an id taken in between is passed over (claim_one checks each again).
        Elsewhere, one transaction."""
        terms: dict[str, Any] = {"cipher": self.store.cipher, "now": now, "lease": self.lease}
        terms["max_attempts"] = MAX_ATTEMPTS
        if not self.db.reads_apart:
            claim_due = partial(steps.claim_due, channel=channel, which=which, **terms)
            return await self._write(claim_due, first=True)
        ids = await self.db.run_read(partial(steps.due_messages, channel=channel, now=now, which=which))
        if not ids:
            return []
        claim = partial(steps.claim_many, ids=ids, fresh_before=which.fresh_before, **terms)
        return await self._write(claim, first=True)

    async def _send_batch(
        self,
        sender: Sender,
        todo: list[Pending],
        state: _Channel,
        report: DeliveryReport,
        round_: Round,
    ) -> None:
        """Send a claimed batch in order; what is left when the round stops is handed back."""
        keep_going = round_.keep_going
        while todo and keep_going():
            if round_.between is not None:
                await round_.between()
            if not keep_going() or not await self._send_one(sender, todo.pop(0), state, report):
                break  # the platform is down or asked us to wait: the others keep their turn
        self.release(todo, at=state.resume_at)

    async def send_claimed(self, sender: Sender, pending: Pending) -> bool:
        """Send one message claimed elsewhere (a step's replies, claimed in its own transaction); its
        result joins the next batch of results. False when the platform is down or asked us to wait."""
        state = self._channels.setdefault(sender.channel, _Channel())
        report = DeliveryReport()
        ok = await self._send_one(sender, pending, state, report)
        _log_round(sender.channel, report)
        return ok

    def release(self, pending: Sequence[Pending], *, at: datetime | None = None) -> None:
        """Hand back claimed messages that were not sent (a stop, a pause): any worker may take them at
        `at` (now by default); the claim does not count as an attempt."""
        when = at or self._clock()
        for p in pending:
            self._record(partial(steps.mark_retry, msg_id=p.id, at=when, error=None, attempts=p.attempts - 1))

    def _record(self, fn: Callable[[Connection], object]) -> None:
        """A send's result, committed with the others waiting (one commit for many), at once when the
        database is free. A crash before that commit sends the message again when its lease ends."""
        self._results.append(fn)
        self._unrecorded += 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_all(), name="outbox-results")

    async def flush(self) -> None:
        """Until every result recorded so far is committed (or given up on, see _flush_all)."""
        while self._results or (self._flusher is not None and not self._flusher.done()):
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_all(), name="outbox-results")
            await asyncio.shield(self._flusher)

    async def _flush_all(self) -> None:
        tries = 0
        while self._results:
            batch, self._results = self._results, []
            try:
                await self._write(partial(_all, batch), first=True)
                self._unrecorded -= len(batch)
                tries = 0
            except Exception as exc:  # the database is away: try again; the lease is the last resort
                tries += 1
                log.warning("delivery results not recorded error=%s tries=%d", type(exc).__name__, tries)
                if tries >= RESULT_TRIES:
                    self._unrecorded -= len(batch)
                    return  # those messages are sent again when their lease ends (at least once)
                self._results[:0] = batch
                await asyncio.sleep(0.2 * tries)

    async def _send_one(
        self, sender: Sender, pending: Pending, state: _Channel, report: DeliveryReport
    ) -> bool:
        """Send one claimed message and record what happened. False when the round should stop."""
        channel = sender.channel
        if self._unrecorded >= MAX_UNRECORDED:
            await self.flush()  # bounds what a crash can repeat (see MAX_UNRECORDED)
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
            self._record(partial(steps.mark_retry, msg_id=pending.id, at=at, error=code, attempts=attempts))
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
            self._fail(pending, channel, exc.code)
            self._failed(report, channel, exc.code)
            return True
        except Exception as exc:  # a bug or a malformed message: that message fails, the others go on
            reason = unexpected(exc)
            self._fail(pending, channel, reason)
            self._failed(report, channel, reason)
            return True
        state.failures = 0
        state.resume_at = None
        # Stamped when the platform answered (it had the message by then): the next message to this
        # chat keeps the platform's per-chat pace from then, in whichever worker it goes
        # (storage.outbox.due_messages). Quick exit's kept ids go in the same write (_mark_sent).
        self._record(_mark_sent(self.store.cipher, sender, pending, ids, self._clock()))
        report.sent += 1
        return True

    def _fail(self, pending: Pending, channel: str, reason: str) -> None:
        at = self._clock()
        self._record(partial(steps.fail_for_good, msg_id=pending.id, channel=channel, at=at, reason=reason))

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
    ) -> DeliveryReport:
        """Deliver until nothing is due now (each round sends the next message of each chat; see
        deliver_once, which the delivery loop calls with its pacing)."""
        total = DeliveryReport()
        for _ in range(rounds):
            got = await self.deliver_once(sender, Round(older_than=older_than, chat_key=chat_key))
            total.add(got)
            if got.idle:
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

    async def repair_heads(self, channel: str) -> int:
        """Mend the channel's queue heads where they disagree with its unsent messages (storage.outbox
        .repair_heads: none in normal running); says so in the log, counts only, when it mends any."""
        mended = await self._write(partial(steps.repair_heads, channel=channel))
        if mended:
            log.warning("outbox heads mended channel=%s chats=%d", channel, mended)
        return mended

    async def _write(self, fn: Callable[[Connection], T], *, first: bool = False) -> T:
        """Run one short write transaction on the database's step path, with the steps (see
        storage.db.Database.run_write and WriteGate); `first`: in the next group commit, ahead of the
        steps waiting (a round's claims, a batch of results: sends wait for them)."""
        if self._lock is None:
            return await self.db.run_write(fn, first=first)
        async with self._lock.shared():
            return await self.db.run_write(fn, first=first)


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


BATCH = 50  # messages claimed in one commit by a round of the outbox
OUTBOX_ROUNDS = 20  # rounds in a row before the loop lets downloads and housekeeping run
WINDOW = 64  # steps whose replies may wait in memory for this process's sender (the database is the queue)


class Delivery:
    """Runs the outbox in the background for one channel's sender: the replies a step handed over after
    its commit (already claimed in its transaction) at once, and the outbox itself when kicked after a
    commit (and at start), every `interval` seconds for retries, and when a paused channel may be
    probed again.

    Handing over (`reserve` before the step, `hand` after its commit; bot.app.step) keeps at most `window`
    steps' replies in memory, and none while the outbox has a backlog, is paused or stopping: then the
    replies wait in the outbox in order (conversation replies first, oldest first) and memory stays flat
    however many people are waiting.

    `older_than` leaves alone messages never tried that are younger than that: a channel that answers in
    the webhook response (WhatsApp) delivers its replies itself and leaves here only what it could not.
    Stopping lets the message in flight finish, hands back what was handed over and not sent (any worker
    or the next start takes it at once), and commits every result before it returns."""

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        *,
        interval: float = 2.0,
        older_than: timedelta = timedelta(0),
        housekeeping: Sequence[Callable[[], Awaitable[None]]] = (),
        after_round: Sequence[Callable[[Callable[[], bool]], Awaitable[object]]] = (),
        window: int = WINDOW,
    ) -> None:
        self.outbox = outbox
        self.after_round = list(after_round)  # e.g. evidence downloads (bot.fetch), after each round
        self.channel = sender.channel
        self.sender: Sender = sender
        # The platform's per-chat pace (seconds between messages to one chat), kept across workers by
        # the claims (storage.outbox), and this process's own readiness per chat, when the sender says.
        self.per_chat = float(getattr(sender, "per_chat", 0.0))
        self._ready_in: Callable[[str], float] | None = getattr(sender, "ready_in", None)
        self.housekeeping = [self._repair_heads, *housekeeping]
        if isinstance(sender, DeletesMessages):
            kept = KeptMessages(sender, outbox)
            self.sender = kept
            self.housekeeping.append(kept.forget_old)
        self.interval = interval
        self.older_than = older_than
        self.window = window
        self._handed: deque[Pending] = deque()  # claimed by a step, to send now, in order
        self._reserved = 0  # steps under way that may hand replies over
        self._backlogged = False  # the last outbox round found a full batch due
        self._outbox_wanted = True
        self._later: asyncio.TimerHandle | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last_housekeeping: float | None = None

    def kick(self) -> None:
        """Deliver what waits in the outbox now (called after a commit that left replies there). A reply
        held back by the per-chat pace is due a little later: wake again then."""
        self._outbox_wanted = True
        self._wake.set()
        self._kick_soon()

    def _kick_later(self) -> None:
        self._later = None
        self._outbox_wanted = True
        self._wake.set()

    def reserve(self) -> bool:
        """Before a step: may it claim its replies and hand them over after its commit? (Each True must
        be answered by one `hand`, with the replies or with nothing.)"""
        if self._task is None or self._stopping or self._backlogged:
            return False
        if self.outbox.resume_in(self.channel) > 0 or len(self._handed) + self._reserved >= self.window:
            return False
        self._reserved += 1
        return True

    def hand(self, pending: Sequence[Pending]) -> None:
        """After the step's commit: its replies, claimed in its transaction, to send now."""
        self._reserved -= 1
        if not pending:
            return
        if self._stopping:
            self.outbox.release(pending)  # too late for this run: any worker takes them at once
            return
        self._handed.extend(pending)
        self._wake.set()

    @property
    def lease(self) -> timedelta:
        """How long a step's claim of its replies holds (bot.app.step): the outbox's lease."""
        return self.outbox.lease

    @property
    def in_memory(self) -> int:
        """Messages this loop holds (handed over, not sent yet): at most about `window` steps' worth."""
        return len(self._handed)

    async def start(self) -> None:
        self._stopping = False
        self._outbox_wanted = True
        self._wake.set()  # what an earlier run left in the outbox goes out at once
        self._task = asyncio.create_task(self._run(), name=f"{self.channel}-delivery")

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        self._wake.set()
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._task is None:
            return
        done, _ = await asyncio.wait({self._task}, timeout=grace)
        if not done:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self._give_back()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.outbox.flush(), grace)

    def _give_back(self) -> None:
        """What was handed over and not sent goes back to the outbox (not counted as an attempt)."""
        if self._handed:
            at = None
            paused = self.outbox.resume_in(self.channel)
            if paused > 0:
                at = datetime.now(UTC) + timedelta(seconds=paused)
            self.outbox.release(list(self._handed), at=at)
            self._handed.clear()

    def _next_wait(self) -> float:
        """Seconds to sleep unless woken: the interval, the next probe, or a handed reply's chat pace."""
        wait = self.interval
        paused = self.outbox.resume_in(self.channel)
        if paused > 0:
            return min(wait, paused)
        if self._handed and self._ready_in is not None:
            ready = self._ready_in
            wait = min(wait, max(0.005, min(ready(p.chat_key) for p in self._handed)))
        return wait

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self._next_wait())
            except TimeoutError:
                self._outbox_wanted = True  # retries, probes, housekeeping
            self._wake.clear()
            if self._stopping:
                break
            try:
                await self._round()
            except Exception as exc:  # a database hiccup must not end delivery for good
                log.warning("delivery round failed channel=%s error=%s", self.channel, type(exc).__name__)

    def _next_ready(self) -> Pending | None:
        """The first handed reply whose chat may be written to now (a chat's own replies in order)."""
        seen: set[str] = set()
        for i, pending in enumerate(self._handed):
            if pending.chat_key in seen:
                continue
            seen.add(pending.chat_key)
            if self._ready_in is None or self._ready_in(pending.chat_key) <= 0:
                del self._handed[i]
                return pending
        return None

    async def _send_handed(self) -> None:
        """Send the handed-over replies that may go now; on an outage, hand the rest back."""
        while self._handed and not self._stopping:
            pending = self._next_ready()
            if pending is None:
                return
            if not await self.outbox.send_claimed(self.sender, pending):
                self._give_back()
                return

    async def _round(self) -> None:
        await self._send_handed()
        if not self._outbox_wanted or self._stopping:
            return
        self._outbox_wanted = False
        got = await self._from_outbox()
        await self._send_handed()
        if got.claimed:
            self._kick_soon()  # what the per-chat pace held back is due within a second
        if self.older_than and (got.sent or got.failed):
            log.info("redelivered channel=%s sent=%d failed=%d", self.channel, got.sent, got.failed)
        for task in self.after_round:
            await task(lambda: not self._stopping)
            await self._send_handed()
        await self._housekeeping()

    async def _repair_heads(self) -> None:
        if await self.outbox.repair_heads(self.channel):
            self.kick()  # a chat found without its head has replies waiting

    async def _housekeeping(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._last_housekeeping is None or now - self._last_housekeeping >= HOUSEKEEPING_EVERY:
            self._last_housekeeping = now
            for hook in self.housekeeping:
                await hook()

    async def _from_outbox(self) -> DeliveryReport:
        """Rounds of the outbox (a batch each) until nothing is due, or OUTBOX_ROUNDS of them (then the
        loop comes back at once, after evidence downloads and housekeeping had their turn). While a
        round finds a full batch, the outbox has a backlog and steps leave their replies in it."""
        total = DeliveryReport()
        paced = Round(
            limit=BATCH,
            older_than=self.older_than,
            per_chat=self.per_chat,
            between=self._send_handed,
            keep_going=lambda: not self._stopping,
        )
        for _ in range(OUTBOX_ROUNDS):
            got = await self.outbox.deliver_once(self.sender, paced)
            self._backlogged = got.claimed >= BATCH and not self._stopping
            total.add(got)
            if got.idle:
                return total
        self._outbox_wanted = True
        self._wake.set()
        return total

    def _kick_soon(self) -> None:
        if self.per_chat > 0 and self._later is None:
            self._later = asyncio.get_running_loop().call_later(self.per_chat, self._kick_later)
