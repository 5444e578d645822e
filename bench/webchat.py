"""Web chat benchmark: `reportbot serve` (one uvicorn worker, SQLite with synchronous=FULL) driven over
loopback by simulated people who each open `/chat` (session cookie and CSRF token) and make a whole
report by posting typed answers as the page's script does (`X-Reportbot-Fetch: 1`, JSON back).
Bounded in count and time; stops by itself.

Prints messages a second at saturation (each person posts their next answer when the last one was
answered) and p50/p95/p99 latency at a fixed offered rate (200 messages a second by default), measured
from when each message was due.

    python bench/webchat.py [--people 64] [--messages 6000] [--seconds 15] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness
from bench.harness import Conn, Run
from bench.people import script

CSRF = re.compile(rb'name="csrf" value="([0-9a-f]+)"')


class Browser(Conn):
    """One keep-alive connection with one session cookie, as one person's browser. With
    `session_per_report`, each report opens the page again on a new connection (a new session);
    otherwise the next report starts in the same session."""

    def __init__(self, port: int, *, session_per_report: bool = False) -> None:
        super().__init__(port)
        self.cookie = ""
        self.csrf = ""
        self.session_per_report = session_per_report

    async def begin(self) -> list[str]:
        if self.session_per_report or not self.cookie:
            self.close()
            await self.open()
        return _lines()

    async def open(self) -> None:
        """GET /chat: the session cookie and the page's CSRF token."""
        status, headers, page = await self.request("GET /chat HTTP/1.1\r\nHost: bench\r\n\r\n")
        assert status == 200, status
        self.cookie = headers[b"set-cookie"].split(b";", 1)[0].decode()
        found = CSRF.search(page)
        assert found is not None
        self.csrf = found.group(1).decode()

    async def send(self, text: str) -> int:
        body = urlencode({"csrf": self.csrf, "text": text}).encode()
        head = (
            "POST /chat/send HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Reportbot-Fetch: 1\r\nCookie: {self.cookie}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        status, headers, _ = await self.request(head, body)
        renewed = headers.get(b"set-cookie")
        if renewed:  # as a browser does: each answer renews the cookie (and the page's version in it)
            self.cookie = renewed.split(b";", 1)[0].decode()
        return status


_stories = iter(range(10**9))


def _lines() -> list[str]:
    return script(f"Someone shouted at my neighbour, web story {next(_stories)}.")


async def closed_loop(port: int, *, people: int, messages: int, seconds: float) -> Run:
    return await harness.closed_loop(
        lambda: Browser(port, session_per_report=True), people=people, messages=messages, seconds=seconds
    )


async def open_loop(port: int, *, rate: float, seconds: float, people: int = 100) -> Run:
    browsers = [Browser(port) for _ in range(people)]
    await asyncio.gather(*(b.open() for b in browsers))
    return await harness.open_loop(browsers, rate=rate, seconds=seconds)


def show(name: str, run: Run) -> None:
    ms = [x * 1000 for x in run.latencies]
    print(
        f"{name}: {run.ok} answered ({run.failed} failed) in {run.elapsed:.1f} s = {run.rate:.0f} messages/s; "
        f"latency p50 {harness.percentile(ms, 50):.1f} ms, p95 {harness.percentile(ms, 95):.1f} ms, p99 {harness.percentile(ms, 99):.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=64, help="people at once in the saturation run")
    parser.add_argument("--messages", type=int, default=6000, help="at most this many in the saturation run")
    parser.add_argument("--seconds", type=float, default=15.0, help="at most this long, each run")
    parser.add_argument("--rate", type=float, default=200.0, help="offered messages a second, second run")
    args = parser.parse_args()
    print(f"machine: {harness.machine()}")
    with tempfile.TemporaryDirectory(prefix="reportbot-bench-webchat-") as folder:
        config = harness.write_config(
            Path(folder), api_port=None, messages_per_second=1000, reports_per_hour=1000
        )
        port = harness.free_port()
        log = Path(folder) / "server.log"
        with harness.serving(harness.serve_args(config, port), port, log=log) as proc:
            saturated = asyncio.run(
                closed_loop(port, people=args.people, messages=args.messages, seconds=args.seconds)
            )
            show(f"saturation ({args.people} people, closed loop)", saturated)
            offered = asyncio.run(open_loop(port, rate=args.rate, seconds=args.seconds))
            show(f"offered {args.rate:.0f} messages/s (open loop)", offered)
            print(f"server peak memory: {harness.peak_rss_mib(proc.pid):.0f} MiB")
        reports, lines = harness.stored_counts(Path(folder) / "data" / "reportbot.db")
        print(f"stored: {reports} reports, {lines} lines from people in transcripts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
