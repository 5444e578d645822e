"""In-process benchmark of the one step and of delivery, without HTTP: people making whole reports through
`ReportService.handle` at once on a SQLite file (WAL, synchronous=FULL), then `Outbox.drain` with a
sender that does nothing. Prints steps a second and CPU a step, messages a second and CPU a message.

    python bench/step.py [--people 40] [--postgres postgresql+asyncpg://root@127.0.0.1/db]

With --postgres (an empty database, migrated here) it also prints the statements a step sends.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event

from bench.harness import write_config
from bench.people import script
from bot.config import load_config
from bot.delivery import Outbox
from bot.service import Envelope, ReportService
from flows.types import Inbound, Outbound
from storage.db import Database
from storage.store import Pending


class NullSender:
    channel = "telegram"

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        return ["1"]


async def run(people: int, postgres: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="reportbot-step-"))
    config = load_config(
        write_config(
            folder, api_port=None, messages_per_second=1000, reports_per_hour=1000, database_url=postgres
        )
    )
    db = Database(config.database_url)
    await db.create_schema()
    statements = 0

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def _count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    service = ReportService(config, db)
    steps = 0

    async def person(i: int) -> None:
        nonlocal steps
        for j, line in enumerate(script(f"story {i}")):
            env = Envelope(
                "telegram", str(1000 + i), Inbound(text=line), delivery_id=f"{i}-{j}", message_ref=str(j)
            )
            outcome = await service.handle(env)
            assert not outcome.duplicate and not outcome.limited
            steps += 1

    try:
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(person(i) for i in range(people)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(
            f"steps: {steps} in {wall:.2f} s = {steps / wall:,.0f} a second, CPU {1000 * cpu / steps:.2f} ms a step"
        )
        if postgres:
            print(f"statements through SQLAlchemy: {statements / steps:.1f} a step")
        outbox = Outbox(db, service.store, lock=service.sqlite_writer)
        t0, c0 = time.perf_counter(), time.process_time()
        report = await outbox.drain(NullSender())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        sent = max(1, report.sent)
        print(
            f"delivery: {report.sent} in {wall:.2f} s = {report.sent / wall:,.0f} a second, "
            f"CPU {1000 * cpu / sent:.2f} ms a message"
        )
    finally:
        await db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=40, help="people at once, 23 messages each")
    parser.add_argument("--postgres", metavar="URL", help="an empty PostgreSQL database instead of SQLite")
    args = parser.parse_args()
    asyncio.run(run(args.people, args.postgres))
    return 0


if __name__ == "__main__":
    sys.exit(main())
