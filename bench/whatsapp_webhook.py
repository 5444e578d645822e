"""How long the WhatsApp webhook takes to answer (Twilio gives up after 15 s). Prints figures; not a test.

Signed form posts go to the real app through httpx.ASGITransport, on a real SQLite file: several people
at once, each walking the first questions of a report by number.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.channels.whatsapp.webhook import whatsapp_routes
from bot.config import load_config
from bot.server import create_app
from bot.service import ReportService
from storage.db import Database
from tests.channels.whatsapp_edge import WHATSAPP_TOML, FakeTwilio, WhatsAppPerson
from tests.conftest import write_config

SCRIPT = ["Hi", "1", "2", "1", "1 2", "1", "Someone shouted at me in the street.", "1", "2", "3"]


async def run(people: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(write_config(Path(tmp), WHATSAPP_TOML), env={})
        db = Database(config.database_url)
        await db.create_schema()
        service = ReportService(config, db)
        app = create_app(config, service, [whatsapp_routes(config, service, http_client=FakeTwilio())])
        timings: list[float] = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://x") as client:

            async def person(n: int) -> None:
                p = WhatsAppPerson(client, service, sender=f"whatsapp:+4477009{n:05d}")
                p.count = n * 1000
                for text in SCRIPT:
                    start = time.perf_counter()
                    await p.send(text)
                    timings.append(time.perf_counter() - start)

            wall = time.perf_counter()
            await asyncio.gather(*(person(n) for n in range(people)))
            wall = time.perf_counter() - wall
        await db.dispose()
    timings.sort()
    ms = [t * 1000 for t in timings]
    print(
        f"whatsapp webhook, SQLite, {people} {'person' if people == 1 else 'people'} at once, {len(ms)} signed posts in {wall:.2f} s"
    )
    print(
        f"  answer time ms: median {statistics.median(ms):.1f}  p95 {ms[int(len(ms) * 0.95)]:.1f}  max {ms[-1]:.1f}"
    )
    print(f"  throughput: {len(ms) / wall:.0f} steps/s  (Twilio's limit per answer: 15000 ms)")


async def main() -> None:
    for people in (1, 20):
        await run(people)


if __name__ == "__main__":
    asyncio.run(main())
