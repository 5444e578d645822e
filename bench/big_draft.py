"""One chat with a very large draft: does it slow everyone else's step? (issue 13, item 4)

People make whole reports through `ReportService.handle` on a SQLite file while one other chat keeps
adding long messages to its story. Three runs: nobody else; that chat under the default size limits
(`[limits] story_characters`, `story_messages`); that chat with the limits set so high that its draft
reaches about 15 MiB first. Prints the other people's step latency (median, p99, max) in each run.

    python bench/big_draft.py [--people 20] [--mib 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import write_config
from bench.people import script
from bot.config import load_config
from bot.service import Envelope, ReportService
from flows.types import Inbound
from storage.db import Database

TO_STORY = ["hi", "1", "no", "1", "1", "race", "It started at the bus stop."]  # the story step, from hello
LONG = 4096  # Telegram's longest message


async def run(people: int, attacker: str, mib: int) -> tuple[list[float], int, int]:
    """Other people's step latencies (ms), the big draft's size (bytes) and the attacker's steps."""
    folder = Path(tempfile.mkdtemp(prefix="reportbot-bigdraft-"))
    path = write_config(folder, api_port=None, messages_per_second=1000, reports_per_hour=1000)
    if attacker == "unlimited":
        text = path.read_text().replace(
            "reports_per_hour = 1000\n",
            "reports_per_hour = 1000\nstory_characters = 100000000\nstory_messages = 1000000\n",
        )
        path.write_text(text)
    config = load_config(path)
    db = Database(config.database_url)
    await db.create_schema()
    service = ReportService(config, db)
    latencies: list[float] = []
    finished = asyncio.Event()
    attacker_steps = 0
    try:
        if attacker != "none":
            for line in TO_STORY:
                await service.handle(Envelope("console", "attacker", Inbound(text=line)))
            if attacker == "unlimited":  # grow to the size of the draft quickly, in big pieces
                piece = "z" * (1024 * 1024)
                for _ in range(mib):
                    await service.handle(Envelope("console", "attacker", Inbound(text=piece)))
                    attacker_steps += 1

        async def flood() -> None:
            nonlocal attacker_steps
            n = 0
            while not finished.is_set():
                n += 1
                await service.handle(
                    Envelope("console", "attacker", Inbound(text=f"{n:05d}" + "x" * (LONG - 5)))
                )
                attacker_steps += 1

        async def person(i: int) -> None:
            for j, line in enumerate(script(f"story {i}")):
                env = Envelope("telegram", str(1000 + i), Inbound(text=line), delivery_id=f"{i}-{j}")
                t0 = time.perf_counter()
                await service.handle(env)
                latencies.append(1000 * (time.perf_counter() - t0))
                await asyncio.sleep(0.005)  # people do not answer in the same microsecond

        flooding = asyncio.create_task(flood()) if attacker != "none" else None
        await asyncio.gather(*(person(i) for i in range(people)))
        finished.set()
        if flooding is not None:
            await flooding
        size = 0
        async with db.engine.connect() as conn:
            from sqlalchemy import text

            found = (await conn.execute(text("SELECT max(length(draft_enc)) FROM conversation"))).scalar()
            size = int(found or 0)
    finally:
        await db.dispose()
    return latencies, size, attacker_steps


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main_async(people: int, mib: int) -> None:
    print(f"{people} people making whole reports (23 steps each) on Telegram, SQLite, one step thread")
    for attacker, label in (
        ("none", "nobody else"),
        ("limited", "one chat flooding its story, default limits"),
        ("unlimited", f"one chat flooding its story, limits off, draft grown to {mib} MiB first"),
    ):
        latencies, size, steps = await run(people, attacker, mib)
        print(
            f"{label}: others' step median {statistics.median(latencies):.1f} ms, p99 {p(latencies, 0.99):.1f} ms, "
            f"max {max(latencies):.1f} ms over {len(latencies)} steps; "
            f"largest stored draft {size / 1024 / 1024:.2f} MiB; flooding chat's steps {steps}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--mib", type=int, default=15, help="size of the large draft in the unlimited run")
    args = parser.parse_args()
    asyncio.run(main_async(args.people, args.mib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
