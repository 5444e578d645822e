"""Abuse limits: a chat that floods is asked calmly to slow down, and a sender who submits many reports
in an hour is asked calmly to wait; neither is an error, and nothing of a flood is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bench.people import script
from bot.config import Config
from bot.limits import ChatRateLimit
from bot.service import Envelope, ReportService
from flows.types import Inbound
from storage.db import Database
from storage.models import InboundReceipt, OutboxMessage, Report, SubmissionCount, TranscriptEntry

T0 = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)


async def count(db: Database, table: Any) -> int:
    async with db.transaction() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar() or 0)


def test_the_bucket_allows_the_rate_tells_once_then_drops_until_it_refills() -> None:
    now = [0.0]
    rate = ChatRateLimit(5.0, clock=lambda: now[0])
    assert [rate.take("a") for _ in range(12)] == ["ok"] * 10 + ["tell", "drop"]
    assert rate.take("b") == "ok"  # another chat is not affected
    now[0] += 0.2  # one token back
    assert rate.take("a") == "ok"
    assert rate.take("a") == "tell"  # told again after it had been let through
    assert ChatRateLimit(0).take("a") == "ok"  # 0 turns the limit off


async def test_a_flood_from_one_chat_is_told_once_to_slow_down_and_stored_no_further(
    make_config: Any,
) -> None:
    config: Config = make_config("[limits]\nmessages_per_second = 3\n")
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    try:
        outcomes = [
            await service.handle(
                Envelope("telegram", "777", Inbound(text=f"hello {i}"), delivery_id=str(i), received_at=T0)
            )
            for i in range(10)
        ]
        calm = [o for o in outcomes if o.limited and o.replies]
        assert len(calm) == 1
        assert "sending messages very fast" in calm[0].replies[0].text
        assert [o.limited for o in outcomes] == [False] * 6 + [True] * 4  # a burst of twice the rate
        assert await count(db, InboundReceipt) == 7  # six steps and the one that was answered calmly
        assert await count(db, TranscriptEntry) > 0
        in_lines = 0
        async with db.transaction() as s:
            in_lines = int(
                (
                    await s.execute(
                        select(func.count())
                        .select_from(TranscriptEntry)
                        .where(TranscriptEntry.direction == "in")
                    )
                ).scalar()
                or 0
            )
        assert in_lines == 6  # what a flood sent beyond the limit is not kept
        # Another person is served normally meanwhile.
        other = await service.handle(Envelope("telegram", "888", Inbound(text="hi"), delivery_id="x"))
        assert not other.limited and "999" in other.replies[0].text
    finally:
        await db.dispose()


async def test_a_report_over_the_hourly_cap_waits_and_the_draft_is_kept(make_config: Any) -> None:
    config: Config = make_config("[limits]\nmessages_per_second = 1000\nreports_per_hour = 2\n")
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    ids = iter(range(10_000))

    async def report(at: datetime, chat: str = "555") -> list[Any]:
        return [
            await service.handle(
                Envelope("telegram", chat, Inbound(text=line), delivery_id=str(next(ids)), received_at=at)
            )
            for line in script(f"story at {at:%H:%M}")
        ]

    try:
        first, second, third = (
            await report(T0),
            await report(T0 + timedelta(minutes=5)),
            await report(T0 + timedelta(minutes=10)),
        )
        assert first[-1].reference and second[-1].reference
        assert third[-1].reference is None and third[-1].limited
        assert "sent a lot of reports in the last hour" in third[-1].replies[0].text
        assert third[-1].step == "review"  # still at the last question, answers kept
        assert await count(db, Report) == 2
        # Another sender is not affected.
        other = await report(T0 + timedelta(minutes=10), chat="999")
        assert other[-1].reference
        # An hour later the same person carries on and sends it: the kept draft goes through.
        later = T0 + timedelta(minutes=65)
        for n, line in enumerate(["hello", "1", "send"]):
            last = await service.handle(
                Envelope("telegram", "555", Inbound(text=line), delivery_id=f"later{n}", received_at=later)
            )
        assert last.reference and not last.limited
        assert await count(db, Report) == 4
        # The first hour's counter was replaced (555: one report in the new window; 999: still one);
        # no counter carries the chat key the conversations and outbox use.
        async with db.transaction() as s:
            rows = (await s.execute(select(SubmissionCount.sender_key, SubmissionCount.count))).all()
        assert sorted(c for _, c in rows) == [1, 1]
        assert not {k for k, _ in rows} & {service.chat_key("telegram", c) for c in ("555", "999")}
        assert await count(db, OutboxMessage) > 0
    finally:
        await db.dispose()
