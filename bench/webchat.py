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
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import free_port, peak_rss_mib, serve_args, start, wait_ready, write_config
from bench.people import script
from bench.webhook import machine, percentile, stop, stored_counts

CSRF = re.compile(rb'name="csrf" value="([0-9a-f]+)"')


@dataclass
class Run:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    reports: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0


class Browser:
    """One keep-alive connection with one session cookie, as one person's browser."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.cookie = ""
        self.csrf = ""

    async def _request(self, head: str, body: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(head.encode("latin-1") + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        headers: dict[bytes, bytes] = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get(b"content-length", b"0"))
        data = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), headers, data

    async def open(self) -> None:
        """GET /chat: the session cookie and the page's CSRF token."""
        status, headers, page = await self._request("GET /chat HTTP/1.1\r\nHost: bench\r\n\r\n")
        assert status == 200, status
        self.cookie = headers[b"set-cookie"].split(b";", 1)[0].decode()
        found = CSRF.search(page)
        assert found is not None
        self.csrf = found.group(1).decode()

    async def say(self, text: str) -> int:
        body = urlencode({"csrf": self.csrf, "text": text}).encode()
        head = (
            "POST /chat/send HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Reportbot-Fetch: 1\r\nCookie: {self.cookie}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        status, _, _ = await self._request(head, body)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


_stories = iter(range(10**9))


def _lines() -> list[str]:
    return script(f"Someone shouted at my neighbour, web story {next(_stories)}.")


async def closed_loop(port: int, *, people: int, messages: int, seconds: float) -> Run:
    run = Run()
    deadline = time.perf_counter() + seconds
    budget = iter(range(messages))

    async def person() -> None:
        while time.perf_counter() < deadline:
            browser = Browser(port)
            try:
                await browser.open()
                for line in _lines():
                    if next(budget, None) is None or time.perf_counter() >= deadline:
                        return
                    t = time.perf_counter()
                    run.sent += 1
                    try:
                        status = await browser.say(line)
                    except (ConnectionError, OSError, asyncio.IncompleteReadError):
                        status = 0
                    run.latencies.append(time.perf_counter() - t)
                    run.ok += status == 200
                    run.failed += status != 200
                run.reports += 1
            finally:
                browser.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(person() for _ in range(people)))
    run.elapsed = time.perf_counter() - t0
    return run


async def open_loop(port: int, *, rate: float, seconds: float, people: int = 100) -> Run:
    run = Run()
    total = int(rate * seconds)
    browsers = [Browser(port) for _ in range(people)]
    await asyncio.gather(*(b.open() for b in browsers))
    t0 = time.perf_counter() + 0.2

    async def person(k: int) -> None:
        browser = browsers[k]
        lines: list[str] = []
        for i in range(k, total, people):
            if not lines:
                lines = _lines()
                run.reports += 1
            due = t0 + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            run.sent += 1
            try:
                status = await browser.say(lines.pop(0))
            except (ConnectionError, OSError, asyncio.IncompleteReadError):
                status = 0
            run.latencies.append(time.perf_counter() - due)
            run.ok += status == 200
            run.failed += status != 200
        browser.close()

    await asyncio.gather(*(person(k) for k in range(people)))
    run.elapsed = time.perf_counter() - t0
    return run


def show(name: str, run: Run) -> None:
    ms = [x * 1000 for x in run.latencies]
    print(
        f"{name}: {run.ok} answered ({run.failed} failed) in {run.elapsed:.1f} s = {run.rate:.0f} messages/s; "
        f"latency p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms, p99 {percentile(ms, 99):.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=64, help="people at once in the saturation run")
    parser.add_argument("--messages", type=int, default=6000, help="at most this many in the saturation run")
    parser.add_argument("--seconds", type=float, default=15.0, help="at most this long, each run")
    parser.add_argument("--rate", type=float, default=200.0, help="offered messages a second, second run")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="reportbot-bench-webchat-") as folder:
        config = write_config(Path(folder), api_port=None, messages_per_second=1000, reports_per_hour=1000)
        port = free_port()
        proc = start(serve_args(config, port), log=Path(folder) / "server.log")
        try:
            wait_ready(port, proc)
            saturated = asyncio.run(
                closed_loop(port, people=args.people, messages=args.messages, seconds=args.seconds)
            )
            show(f"saturation ({args.people} people, closed loop)", saturated)
            offered = asyncio.run(open_loop(port, rate=args.rate, seconds=args.seconds))
            show(f"offered {args.rate:.0f} messages/s (open loop)", offered)
            print(f"server peak memory: {peak_rss_mib(proc.pid):.0f} MiB")
        finally:
            stop(proc)
        reports, lines = stored_counts(Path(folder) / "data" / "reportbot.db")
        print(f"stored: {reports} reports, {lines} lines from people in transcripts")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
