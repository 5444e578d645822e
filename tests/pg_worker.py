"""One `reportbot serve`-like worker process for tests/test_workers.py: it handles its share of every
chat's deliveries (and duplicates of others'), and delivers the outbox, on a shared database.

    python -m tests.pg_worker CONFIG PLAN WORKER WORKERS LOG

A chat's message j goes to worker j % WORKERS, and again (a platform retry) to worker (j + 1) % WORKERS.
Like Telegram, a chat's next message is only sent after the previous one was acknowledged (its
delivery id is committed). Deliveries are appended to LOG as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.config import load_config
from bot.delivery import Outbox
from bot.render import as_text
from bot.service import Envelope, ReportService
from flows.types import Inbound, Outbound
from storage.db import Database
from storage.models import InboundReceipt
from storage.store import Pending
from storage.writes import delivery_key
from tests.reporting import START

CHANNEL = "console"


def delivery_id(chat: str, j: int) -> str:
    return f"{chat}:{j}"


class RecordingSender:
    """The network edge: writes what would be sent, with the outbox id, to a log file."""

    channel = CHANNEL

    def __init__(self, log: Path, worker: int) -> None:
        self.fh = log.open("a", encoding="utf-8")
        self.worker = worker

    async def send(self, address: str, message: Outbound, pending: Pending) -> Sequence[str]:
        entry = {
            "id": pending.id,
            "chat": address,
            "text": as_text(message),
            "at": time.time(),
            "w": self.worker,
        }
        self.fh.write(json.dumps(entry) + "\n")
        self.fh.flush()
        return ()


async def run(config_path: str, plan: dict[str, list[str]], worker: int, workers: int, log: str) -> int:
    config = load_config(config_path, env={})
    db = Database(config.database_url, pool_size=10)
    service = ReportService(config, db)
    outbox = Outbox(db, service.store)
    sender = RecordingSender(Path(log), worker)

    async def acknowledged(chat: str, j: int) -> bool:
        key = delivery_key(service.cipher, CHANNEL, delivery_id(chat, j))
        async with db.transaction() as s:
            found = await s.execute(
                select(InboundReceipt.id).where(
                    InboundReceipt.channel == CHANNEL, InboundReceipt.delivery_id == key
                )
            )
            return found.first() is not None

    async def talk(chat: str, lines: list[str]) -> None:
        for j, text in enumerate(lines):
            if worker not in (j % workers, (j + 1) % workers):
                continue
            while j > 0 and not await acknowledged(chat, j - 1):  # noqa: ASYNC110  (another process)
                await asyncio.sleep(0.003)
            env = Envelope(
                CHANNEL,
                chat,
                Inbound(text=text),
                delivery_id=delivery_id(chat, j),
                received_at=START + timedelta(seconds=j),  # as tests.reporting.converse: same answers
            )
            await service.handle(env)

    talking = asyncio.gather(*(talk(chat, lines) for chat, lines in plan.items()))

    async def all_acknowledged() -> bool:
        for chat, lines in plan.items():
            if not await acknowledged(chat, len(lines) - 1):
                return False
        return True

    async def deliver() -> None:
        while True:
            sent = (await outbox.deliver_once(sender)).sent
            if sent == 0:
                async with db.transaction() as s:
                    pending = await service.store.pending_count(s, CHANNEL)
                if pending == 0 and talking.done() and await all_acknowledged():
                    return
                await asyncio.sleep(0.005)

    await asyncio.gather(talking, deliver())
    await db.dispose()
    return 0


if __name__ == "__main__":
    cfg, plan, w, n, log = sys.argv[1:6]
    raise SystemExit(asyncio.run(run(cfg, json.loads(Path(plan).read_text()), int(w), int(n), log)))
