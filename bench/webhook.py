"""Webhook benchmark: `reportbot serve` (one uvicorn worker, SQLite with synchronous=FULL, the outbox
delivering to a fake Bot API on loopback) driven by simulated people making whole reports with real
Telegram update JSON over HTTP. Bounded in count and time; stops by itself.

Two mixes (bench/people.py), each measured on the same server, one after the other:
- realistic: a report as people make it, 28 updates of which 22 are button presses carrying the
  callback data our keyboards carry, and 6 typed answers;
- typed: every answer typed (25 updates), the only mix this bench measured before issue 17.

For each: updates a second at saturation, p50/p95/p99 latency at a fixed offered rate, and the server's
CPU per update (its process CPU time over the updates answered, delivery included): the figure that
does not depend on how loaded the machine is. Then the server's peak memory, and two ceilings measured
in the same run on the same machine: a bare Starlette endpoint that answers 200 (the HTTP ceiling) and
a loop of single-row durable SQLite commits (the durability ceiling).

    python bench/webhook.py [--people 128] [--messages 20000] [--seconds 40] [--rate 200] [--mix both]
    python bench/webhook.py --typed                          # the typed mix only
    python bench/webhook.py --postgres postgresql+asyncpg://user@127.0.0.1/db --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy.engine import make_url

from bench import harness
from bench.harness import (
    Conn,
    CpuShares,
    Run,
    callback_update,
    encode,
    free_port,
    load_average,
    machine,
    peak_rss_mib,
    percentile,
    serve_args,
    serving,
    start,
    stop,
    stored_counts,
    telegram_body,
    tree_cpu_seconds,
    write_config,
)
from bench.people import Turn, realistic, script
from bot.config import load_config

_ids = itertools.count(1)
_chats = itertools.count(random.randrange(10**9, 2 * 10**9, 10**6))


def typed_bodies() -> list[bytes]:
    """One whole report by a new person, every answer typed, as the update bodies Telegram would post."""
    chat = next(_chats)
    return [
        telegram_body(next(_ids), chat, 10 + i, line)
        for i, line in enumerate(script(f"Someone shouted at my neighbour, story {chat}."))
    ]


def realistic_bodies(turns: list[Turn]) -> list[bytes]:
    """One whole report by a new person as people make it (buttons and typing), as Telegram posts it."""
    chat = next(_chats)
    story = f"Someone shouted at my neighbour, story {chat}."
    bodies = []
    for i, turn in enumerate(turns):
        if turn.data is None:
            bodies.append(telegram_body(next(_ids), chat, 10 + i, turn.typed(story)))
        else:  # the button was on the bot's latest question
            update = callback_update(
                next(_ids), chat, 1000 + i, turn.data, question=turn.question, markup=turn.markup
            )
            bodies.append(encode(update))
    return bodies


class TelegramPerson(Conn):
    """Someone reporting through Telegram: one update a chat at a time (Telegram's way), each report
    from a new chat, over one keep-alive connection. `turns`: the realistic script, or None for typed."""

    def __init__(self, port: int, turns: list[Turn] | None = None) -> None:
        super().__init__(port)
        self.turns = turns

    async def begin(self) -> list[bytes]:
        return typed_bodies() if self.turns is None else realistic_bodies(self.turns)

    async def send(self, message: bytes) -> int:
        return await self.post_update(message)


async def closed_loop(
    port: int, *, people: int, messages: int, seconds: float, turns: list[Turn] | None = None
) -> Run:
    """Each person posts their next message as soon as the previous one was answered; when a report is
    done a new person starts. Bounded both ways."""
    return await harness.closed_loop(
        lambda: TelegramPerson(port, turns), people=people, messages=messages, seconds=seconds
    )


async def open_loop(
    port: int, *, rate: float, seconds: float, people: int = 100, turns: list[Turn] | None = None
) -> Run:
    """A fixed offered rate over `people` chats (see bench.harness.open_loop)."""
    return await harness.open_loop(
        [TelegramPerson(port, turns) for _ in range(people)], rate=rate, seconds=seconds
    )


@dataclass
class Mix:
    """One mix's figures: saturation, the fixed-rate latency run, and the server's CPU over each."""

    name: str
    sat: Run
    lat: Run
    cpu_sat: float  # server CPU seconds during the saturation run
    cpu_lat: float
    shares: dict[str, float]  # who used the CPUs during the saturation run (harness.CpuShares)

    def cpu_per_update_ms(self) -> float:
        return 1000 * self.cpu_sat / max(1, self.sat.ok)


def measure(name: str, port: int, pid: int, args: argparse.Namespace, turns: list[Turn] | None) -> Mix:
    database = make_url(args.postgres).database if args.postgres else None
    with CpuShares(pid, database=database) as shares:
        sat = asyncio.run(
            closed_loop(port, people=args.people, messages=args.messages, seconds=args.seconds, turns=turns)
        )
    c1 = tree_cpu_seconds(pid)
    lat = asyncio.run(open_loop(port, rate=args.rate, seconds=args.latency_seconds, turns=turns))
    c2 = tree_cpu_seconds(pid)
    return Mix(name, sat, lat, shares.seconds["server"], c2 - c1, shares.seconds)


def shares_rows(mixes: list[Mix], postgres: bool) -> list[tuple[str, list[str]]]:
    """Who used the CPUs during each saturation run, in CPUs (1.00 = one whole CPU) and per update."""
    names = ["server", "postgres", "load generator"] if postgres else ["server", "load generator"]
    rows = []
    for who in names:
        label = "PostgreSQL backends of this database" if who == "postgres" else who
        rows.append(
            (
                f"  {label}: CPUs / per update",
                [
                    f"{m.shares[who] / m.shares['wall']:.2f} / {1000 * m.shares[who] / max(1, m.sat.ok):.2f} ms"
                    for m in mixes
                ],
            )
        )
    ours = ["server", "load generator"] + (["postgres"] if postgres else [])
    rows.append(
        (
            f"  the machine's {os.cpu_count()} CPUs busy / of it, others' work",
            [
                f"{m.shares['machine busy'] / m.shares['wall']:.2f} / "
                f"{max(0.0, m.shares['machine busy'] - sum(m.shares[w] for w in ours)) / m.shares['wall']:.2f}"
                for m in mixes
            ],
        )
    )
    return rows


# The fake's counts of a reply sent twice in a row, for the crash test: the realistic script asks "Is
# there more?" twice in a row by design (two typed lines of story), so here they mean nothing.
CRASH_COUNTS = frozenset({"duplicates", "most_in_one_chat"})


def fake_calls(port: int) -> dict[str, int]:
    """The fake Bot API's counts of the requests it received, by method."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:.1f}"


def table(mixes: list[Mix], rate: float, people: int, postgres: bool = False) -> list[str]:
    """The mixes side by side."""
    rows = [
        ("", [m.name for m in mixes]),
        (f"updates/s at saturation ({people} people)", [f"{m.sat.rate:,.0f}" for m in mixes]),
        (
            "  answered 200 / not / whole reports",
            [f"{m.sat.ok:,} / {m.sat.failed} / {m.sat.reports}" for m in mixes],
        ),
        ("  latency p50 / p99 ms", [f"{ms(m.sat.latencies, 50)} / {ms(m.sat.latencies, 99)}" for m in mixes]),
        ("server CPU per update (saturation)", [f"{m.cpu_per_update_ms():.2f} ms" for m in mixes]),
        *shares_rows(mixes, postgres),
        (
            f"latency at {rate:.0f}/s offered p50 / p95 / p99 ms",
            [
                f"{ms(m.lat.latencies, 50)} / {ms(m.lat.latencies, 95)} / {ms(m.lat.latencies, 99)}"
                for m in mixes
            ],
        ),
        ("  answered 200 / not", [f"{m.lat.ok:,} / {m.lat.failed}" for m in mixes]),
        (
            f"server CPU per update (at {rate:.0f}/s)",
            [f"{1000 * m.cpu_lat / max(1, m.lat.ok):.2f} ms" for m in mixes],
        ),
    ]
    width = max(len(r[0]) for r in rows)
    return [f"{label:<{width}}  " + "  ".join(f"{c:>22}" for c in cells) for label, cells in rows]


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
    parser.add_argument(
        "--mix", choices=("both", "realistic", "typed"), default="both", help="which mixes to measure"
    )
    parser.add_argument("--typed", action="store_const", const="typed", dest="mix", help="= --mix typed")
    args = parser.parse_args()
    if args.workers > 1 and not args.postgres:
        parser.error("--workers > 1 needs --postgres (SQLite takes one writer)")

    load_before = load_average()
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
    turns = realistic(load_config(config, env={}).flow_settings())
    kinds = {"realistic": [("realistic", turns)], "typed": [("typed", None)]}
    chosen = kinds["realistic"] + kinds["typed"] if args.mix == "both" else kinds[args.mix]
    with serving(serve_args(config, port), port, log=folder / "server.log", env=env) as server:
        warm = asyncio.run(closed_loop(port, people=64, messages=400, seconds=10, turns=chosen[0][1]))
        mixes = [measure(name, port, server.pid, args, t) for name, t in chosen]
        peak = peak_rss_mib(server.pid)
    calls = fake_calls(api_port)
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
    print(f"machine: {machine()}; load average before/after: {load_before} / {load_average()}")
    print(f"backend: {backend}, {args.workers} uvicorn worker(s), {args.people} people at once")
    print(
        f"mixes: realistic = {len(turns)} updates a report, {sum(t.data is not None for t in turns)} of them "
        f"button presses; typed = {len(script(''))} typed updates a report"
    )
    print("\n".join(table(mixes, args.rate, args.people, postgres=bool(args.postgres))))
    print(f"server peak memory (VmHWM): {peak:.0f} MiB")
    print(
        "requests the fake Bot API received: "
        + ", ".join(f"{name} {n:,}" for name, n in sorted(calls.items()) if name not in CRASH_COUNTS)
    )
    answered = warm.ok + sum(m.sat.ok + m.lat.ok for m in mixes)
    sat = mixes[0].sat
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
