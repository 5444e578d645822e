"""Webhook benchmark: `reportbot serve` (one uvicorn worker, SQLite with synchronous=FULL, the outbox
delivering to a fake Bot API on loopback) driven by simulated people making whole reports with real
Telegram update JSON over HTTP. Bounded in count and time; stops by itself.

Prints messages a second at saturation, p50/p95/p99 latency at a fixed offered rate, the server's peak
memory, and two ceilings measured in the same run on the same machine: a bare Starlette endpoint that
answers 200 (the HTTP ceiling) and a loop of single-row durable SQLite commits (the durability ceiling).

    python bench/webhook.py [--people 128] [--messages 20000] [--seconds 60] [--rate 200]
    python bench/webhook.py --postgres postgresql+asyncpg://user@127.0.0.1/db --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness
from bench.harness import (
    Conn,
    Run,
    free_port,
    machine,
    peak_rss_mib,
    percentile,
    serve_args,
    serving,
    start,
    stop,
    stored_counts,
    telegram_body,
    write_config,
)
from bench.people import script

_ids = itertools.count(1)
_chats = itertools.count(random.randrange(10**9, 2 * 10**9, 10**6))


def _bodies() -> list[bytes]:
    """One whole report by a new person, as the update bodies Telegram would post."""
    chat = next(_chats)
    return [
        telegram_body(next(_ids), chat, 10 + i, line)
        for i, line in enumerate(script(f"Someone shouted at my neighbour, story {chat}."))
    ]


class TelegramPerson(Conn):
    """Someone reporting through Telegram: one update a chat at a time (Telegram's way), each report
    from a new chat, over one keep-alive connection."""

    async def begin(self) -> list[bytes]:
        return _bodies()

    async def send(self, message: bytes) -> int:
        return await self.post_update(message)


async def closed_loop(port: int, *, people: int, messages: int, seconds: float) -> Run:
    """Each person posts their next message as soon as the previous one was answered; when a report is
    done a new person starts. Bounded both ways."""
    return await harness.closed_loop(
        lambda: TelegramPerson(port), people=people, messages=messages, seconds=seconds
    )


async def open_loop(port: int, *, rate: float, seconds: float, people: int = 100) -> Run:
    """A fixed offered rate over `people` chats (see bench.harness.open_loop)."""
    return await harness.open_loop([TelegramPerson(port) for _ in range(people)], rate=rate, seconds=seconds)


def durability_ceiling(folder: Path, seconds: float = 3.0, limit: int = 20_000) -> float:
    """Single-row commits a second with the server's pragmas (WAL, synchronous=FULL), same disk."""
    path = folder / "ceiling.db"
    db = sqlite3.connect(path, isolation_level=None)
    for pragma in ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA secure_delete=ON"):
        db.execute(pragma)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    n = 0
    t0 = time.perf_counter()
    while n < limit and time.perf_counter() - t0 < seconds:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
        db.execute("COMMIT")
        n += 1
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=128, help="simulated people at once (saturation)")
    parser.add_argument(
        "--messages", type=int, default=20_000, help="at most this many messages (saturation)"
    )
    parser.add_argument("--seconds", type=float, default=40.0, help="at most this long (saturation)")
    parser.add_argument("--rate", type=float, default=200.0, help="offered rate for the latency run")
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--postgres", metavar="URL", help="run against PostgreSQL (postgresql+asyncpg://...)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (PostgreSQL only)")
    parser.add_argument("--dir", type=Path, help="keep files here (default: a temporary folder)")
    args = parser.parse_args()
    if args.workers > 1 and not args.postgres:
        parser.error("--workers > 1 needs --postgres (SQLite takes one writer)")

    folder = args.dir or Path(tempfile.mkdtemp(prefix="reportbot-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    api_port, port = free_port(), free_port()
    fake = start(["bench/fake_telegram.py", str(api_port)], log=folder / "fake.log")
    # The per-chat pace would make the fastest simulated people wait (bot/limits.py, docs/limits.md):
    # it is set out of reach so that the figures measure the server, not the pace.
    config = write_config(
        folder / "run", api_port=api_port, database_url=args.postgres, messages_per_second=1000.0
    )
    env = {"REPORTBOT_SERVER__WORKERS": str(args.workers)}
    if args.postgres:  # `serve` refuses a database whose schema is behind; SQLite is created on start
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "db", "upgrade", "--config", str(config)],
            cwd=Path(__file__).resolve().parents[1],
            check=True,
            capture_output=True,
        )
    with serving(serve_args(config, port), port, log=folder / "server.log", env=env) as server:
        warm = asyncio.run(closed_loop(port, people=64, messages=400, seconds=10))
        sat = asyncio.run(closed_loop(port, people=args.people, messages=args.messages, seconds=args.seconds))
        lat = asyncio.run(open_loop(port, rate=args.rate, seconds=args.latency_seconds))
        peak = peak_rss_mib(server.pid)
    stop(fake)
    reports = lines = -1
    if not args.postgres:
        reports, lines = stored_counts(folder / "run" / "data" / "reportbot.db")

    http_port = free_port()
    with serving(["bench/ceiling_http.py", str(http_port)], http_port, log=folder / "ceiling.log"):
        asyncio.run(closed_loop(http_port, people=8, messages=400, seconds=5))
        http = asyncio.run(
            closed_loop(http_port, people=args.people, messages=args.messages, seconds=args.seconds / 2)
        )
    durable = durability_ceiling(folder)

    backend = "PostgreSQL" if args.postgres else "SQLite (WAL, synchronous=FULL)"
    print(f"machine: {machine()}")
    print(f"backend: {backend}, {args.workers} uvicorn worker(s), {args.people} people at once")
    print(
        f"saturation: {sat.rate:,.0f} messages/s ({sat.ok:,} answered 200, {sat.failed} not, "
        f"{sat.elapsed:.1f} s, {sat.reports} whole reports); "
        f"latency p50 {percentile(sat.latencies, 50) * 1000:.1f} ms, p99 {percentile(sat.latencies, 99) * 1000:.1f} ms"
    )
    print(
        f"latency at {args.rate:.0f} messages/s offered ({lat.ok:,} answered 200, {lat.failed} not): "
        f"p50 {percentile(lat.latencies, 50) * 1000:.1f} ms, p95 {percentile(lat.latencies, 95) * 1000:.1f} ms, "
        f"p99 {percentile(lat.latencies, 99) * 1000:.1f} ms, mean {statistics.fmean(lat.latencies) * 1000:.1f} ms"
    )
    print(f"server peak memory (VmHWM): {peak:.0f} MiB")
    answered = warm.ok + sat.ok + lat.ok
    if reports >= 0:
        print(
            f"stored after the run: {reports:,} reports, {lines:,} person's lines in transcripts "
            f"for {answered:,} messages answered 200 (warm-up included)"
        )
    print(f"HTTP ceiling (bare Starlette 200, same uvicorn): {http.rate:,.0f} requests/s")
    print(f"durability ceiling (single-row SQLite commits, synchronous=FULL): {durable:,.0f} commits/s")
    print(
        f"ours / HTTP ceiling: {sat.rate / http.rate:.2f}; ours / durability ceiling: {sat.rate / durable:.2f}"
    )
    if reports >= 0 and lines != answered:
        print(f"MISMATCH: {answered - lines:,} messages answered 200 are not stored as they should be")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
