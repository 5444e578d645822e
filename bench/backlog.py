"""The outgoing side: first-reply latency below the cap, then 10,000 people at once above it.

`reportbot serve` (one uvicorn worker, SQLite with synchronous=FULL) sends its replies to a fake Bot API
served in this process (tests/fakes/telegram_api.py behind Starlette), which notes when each reply
arrives, so a reply's latency is measured on one clock: webhook post sent -> sendMessage received.

1. First reply at a rate below the outbound cap (default 20 updates a second, 100 people working
   through a report): p50/p95/p99 from posting an update to the first reply to that chat after it.
2. Backlog: `--people` (10,000) new people each post `--each` updates at `--offer` a second, faster
   than the cap (25 a second). Printed: the server's peak memory (VmHWM), the send rate during the
   load, the outbox backlog every 5 s, the send rate while it drains for `--drain` seconds and the time
   the rest would take at that rate (backlog / rate), and how long the server takes to stop on SIGTERM
   with the backlog still there.

    python bench/backlog.py [--rate 20] [--seconds 15] [--people 10000] [--each 2] [--offer 200] [--drain 30]

Figures, not a test: bounded in count and time; stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn
from starlette.applications import Starlette

from bench.fake_telegram import api_app
from bench.harness import (
    Conn,
    free_port,
    machine,
    peak_rss_mib,
    percentile,
    serve_args,
    start,
    telegram_body,
    wait_ready,
    write_config,
)
from bench.people import script

SENDS = ("sendMessage", "editMessageText")


class Arrivals:
    """The fake Bot API's log: when each reply arrived, per chat (phase 1) and per second (phase 2)."""

    def __init__(self) -> None:
        self.keep_chats = True
        self.by_chat: dict[int, list[float]] = defaultdict(list)
        self.times: list[float] = []  # every reply's arrival (a float each: 20,000 are 160 KB)

    def app(self) -> Starlette:
        return api_app(self.seen)

    def seen(self, name: str, status: int, params: dict[str, Any] | None) -> None:
        if name in SENDS and status == 200 and params is not None:
            now = time.perf_counter()
            self.times.append(now)
            if self.keep_chats:
                self.by_chat[int(params["chat_id"])].append(now)


_ids = itertools.count(1)


async def first_replies(
    port: int, arrivals: Arrivals, *, rate: float, seconds: float, people: int
) -> tuple[list[float], list[float]]:
    """People working through a report, `rate` updates a second in all; the latency of each update's
    first reply (post sent -> first reply to that chat after it), and of its 200 (the step committed)."""
    chats = [3_000_000_000 + i for i in range(people)]
    posted: list[tuple[int, float]] = []
    acks: list[float] = []
    total = int(rate * seconds)
    t0 = time.perf_counter() + 0.2

    async def person(k: int) -> None:
        conn = Conn(port)
        lines = script(f"Someone shouted at my neighbour, story {k}.")
        try:
            for n, i in enumerate(range(k, total, people)):
                due = t0 + i / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                body = telegram_body(next(_ids), chats[k], 10 + n, lines[n % len(lines)])
                began = time.perf_counter()
                posted.append((chats[k], began))
                for _ in range(3):  # the server may close an idle keep-alive connection: again
                    with contextlib.suppress(ConnectionError):
                        await conn.post_update(body)
                        break
                acks.append(time.perf_counter() - began)
        finally:
            conn.close()

    await asyncio.gather(*(person(k) for k in range(people)))
    await asyncio.sleep(2.0)  # the last replies
    latencies = []
    for chat, began in posted:
        seen = arrivals.by_chat.get(chat, [])
        i = bisect.bisect_left(seen, began)
        if i < len(seen):
            latencies.append(seen[i] - began)
    return latencies, acks


def unsent(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return int(
            conn.execute(
                "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL"
            ).fetchone()[0]
        )
    finally:
        conn.close()


async def offer(
    port: int, *, people: int, each: int, rate: float, clients: int = 64
) -> tuple[int, int, float]:
    """`people` new chats, each posting its first `each` updates, at `rate` a second in all (an open
    loop over `clients` connections). (answered 200, not, seconds)."""
    lines = script("Someone shouted at my neighbour.")
    work = [(4_000_000_000 + p, n) for n in range(each) for p in range(people)]
    ok = bad = 0
    t0 = time.perf_counter()

    async def client(c: int) -> None:
        nonlocal ok, bad
        conn = Conn(port)
        try:
            for i in range(c, len(work), clients):
                await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
                chat, n = work[i]
                try:
                    status = await conn.post_update(telegram_body(next(_ids), chat, 10 + n, lines[n]))
                except ConnectionError:
                    status = 0
                ok += status == 200
                bad += status != 200
        finally:
            conn.close()

    await asyncio.gather(*(client(c) for c in range(clients)))
    return ok, bad, time.perf_counter() - t0


async def watch(db: Path, arrivals: Arrivals, until: asyncio.Event, every: float = 5.0) -> list[str]:
    lines: list[str] = []
    t0 = time.perf_counter()
    while not until.is_set():
        with_timeout = asyncio.create_task(until.wait())
        await asyncio.wait({with_timeout}, timeout=every)
        with_timeout.cancel()
        now = time.perf_counter()
        recent = sum(1 for t in arrivals.times if t > now - every)
        backlog = await asyncio.to_thread(unsent, db)
        lines.append(f"  t={now - t0:5.0f} s  backlog {backlog:6,}  sent {recent / every:5.1f}/s")
    return lines


def rate_between(times: list[float], a: float, b: float) -> tuple[float, int]:
    """(mean sends a second in [a, b), the most in any one-second bucket)."""
    inside = [t for t in times if a <= t < b]
    buckets: dict[int, int] = defaultdict(int)
    for t in inside:
        buckets[int(t - a)] += 1
    return (len(inside) / (b - a) if b > a else 0.0), max(buckets.values(), default=0)


async def run(args: argparse.Namespace, folder: Path) -> int:
    arrivals = Arrivals()
    api_port, port = free_port(), free_port()
    fake = uvicorn.Server(
        uvicorn.Config(arrivals.app(), host="127.0.0.1", port=api_port, log_level="warning")
    )
    fake_task = asyncio.create_task(fake.serve())
    config = write_config(folder / "run", api_port=api_port, messages_per_second=1000.0)
    db = folder / "run" / "data" / "reportbot.db"
    server = start(serve_args(config, port), log=folder / "server.log")
    try:
        await asyncio.to_thread(wait_ready, port, server, 60.0)
        lat, acks = await first_replies(
            port, arrivals, rate=args.rate, seconds=args.seconds, people=args.reporters
        )
        replies = len(arrivals.times)
        arrivals.keep_chats = False
        arrivals.by_chat.clear()
        posted = int(args.rate * args.seconds)
        print(f"machine: {machine()}; load average before the backlog: {os.getloadavg()[0]:.2f}")
        print(
            f"first reply at {args.rate:.0f} updates/s ({len(lat):,} of {posted:,} updates answered with a reply): "
            f"p50 {percentile(lat, 50) * 1000:.1f} ms, p95 {percentile(lat, 95) * 1000:.1f} ms, "
            f"p99 {percentile(lat, 99) * 1000:.1f} ms, mean {statistics.fmean(lat or [0]) * 1000:.1f} ms; "
            f"{replies / posted:.2f} messages sent an update"
        )
        print(
            f"  the same updates' 200 (step committed): p50 {percentile(acks, 50) * 1000:.1f} ms, "
            f"p99 {percentile(acks, 99) * 1000:.1f} ms"
        )

        stop_watch = asyncio.Event()
        watcher = asyncio.create_task(watch(db, arrivals, stop_watch))
        load_start = time.perf_counter()
        ok, bad, took = await offer(port, people=args.people, each=args.each, rate=args.offer)
        load_end = time.perf_counter()
        peak_load = peak_rss_mib(server.pid)
        backlog_end = await asyncio.to_thread(unsent, db)
        await asyncio.sleep(args.drain)
        drain_end = time.perf_counter()
        backlog_after = await asyncio.to_thread(unsent, db)
        stop_watch.set()
        timeline = await watcher
        peak = peak_rss_mib(server.pid)
        load_rate, load_max = rate_between(arrivals.times, load_start, load_end)
        drain_rate, drain_max = rate_between(arrivals.times, load_end, drain_end)
        print(
            f"load: {args.people:,} people x {args.each} updates offered at {args.offer:.0f}/s: {ok:,} answered 200, "
            f"{bad} not, in {took:.1f} s ({ok / took:,.0f}/s); load average {os.getloadavg()[0]:.2f}"
        )
        print(f"replies sent during the load: {load_rate:.1f}/s on average, at most {load_max} in one second")
        print(
            f"server peak memory (VmHWM): {peak_load:.0f} MiB at the end of the load, {peak:.0f} MiB after the drain"
        )
        print(f"outbox backlog at the end of the load: {backlog_end:,}")
        print(
            f"draining for {args.drain:.0f} s: {drain_rate:.1f}/s on average (at most {drain_max} in one second); "
            f"backlog {backlog_after:,} left, which at {drain_rate:.1f}/s takes "
            f"{backlog_after / drain_rate if drain_rate else float('inf'):,.0f} s more "
            f"(the whole backlog: {backlog_end / drain_rate if drain_rate else float('inf'):,.0f} s)"
        )
        print("backlog over time:")
        print("\n".join(timeline))
        began = time.perf_counter()
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(server.wait, 150)
            print(f"shutdown on SIGTERM with {backlog_after:,} unsent: {time.perf_counter() - began:.1f} s")
        except subprocess.TimeoutExpired:
            print("shutdown on SIGTERM: still running after 150 s (killed)")
        left = await asyncio.to_thread(unsent, db)
        print(
            f"after the stop: {left:,} unsent in the outbox (none held by a claim: the next start sends them)"
        )
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        fake.should_exit = True
        await fake_task
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="updates a second for the first-reply run")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the first-reply run")
    parser.add_argument("--reporters", type=int, default=40, help="people in the first-reply run")
    parser.add_argument("--people", type=int, default=10_000, help="people in the backlog run")
    parser.add_argument("--each", type=int, default=2, help="updates each person posts in the backlog run")
    parser.add_argument(
        "--offer", type=float, default=200.0, help="updates a second offered in the backlog run"
    )
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to watch the backlog drain")
    parser.add_argument("--dir", type=Path, help="keep files here (default: a temporary folder)")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="reportbot-backlog-"))
    folder.mkdir(parents=True, exist_ok=True)
    return asyncio.run(run(args, folder))


if __name__ == "__main__":
    raise SystemExit(main())
