"""Shared by the benchmarks and the crash test: a config, the server as a subprocess, the fake Bot API
on loopback, a lean HTTP/1.1 client, Telegram update JSON for simulated people, and the two load
shapes (a closed loop at saturation, an open loop at a fixed offered rate) with their figures.

The client is a few lines over asyncio streams (keep-alive, Content-Length only) so that the load
generator costs little CPU on a two-core machine and the server gets the other core.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TOKEN = "123456:TEST-token-for-the-fake-bot-api"
SECRET = "bench-webhook-secret-0123456789"
WEBHOOK = "/telegram/webhook"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    folder: Path,
    *,
    api_port: int | None,
    database_url: str | None = None,
    messages_per_second: float = 5.0,
    reports_per_hour: int = 5,
    window_messages: int = 200,
) -> Path:
    """A complete config for `reportbot serve` with Telegram pointed at a fake Bot API on loopback."""
    folder.mkdir(parents=True, exist_ok=True)
    api = f"http://127.0.0.1:{api_port}/bot" if api_port else "http://127.0.0.1:9/bot"
    db_line = f'url = "{database_url}"' if database_url else ""
    text = f"""
[service]
data_dir = "{folder / "data"}"

[database]
{db_line}

[security]
encryption_keys = ["{Fernet.generate_key().decode()}"]
pseudonym_key = "{os.urandom(24).hex()}"

[telegram]
token = "{TOKEN}"
webhook_secret = "{SECRET}"
api_base_url = "{api}"

[limits]
messages_per_second = {messages_per_second}
window_messages = {window_messages}
reports_per_hour = {reports_per_hour}

[[partners]]
id = "police"
name = "Police"
does = "The police can look into what happened."
"""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def start(
    args: Sequence[str], *, log: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a Python process from the repository root, its output in `log`."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (the child owns it)
    return subprocess.Popen(
        [PYTHON, *args], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
    )


def serve_args(config: Path, port: int) -> list[str]:
    return ["-m", "bot.cli", "serve", "--config", str(config), "--port", str(port)]


def wait_ready(port: int, proc: subprocess.Popen[bytes] | None = None, within: float = 60.0) -> None:
    """Until GET /healthz answers 200."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become ready")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory (VmHWM) in MiB; with workers, the largest of its processes."""
    peaks = [float("nan")]
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        except OSError:
            continue
    return max(peaks[1:], default=peaks[0])


def tree(pid: int) -> list[int]:
    """A process and all its descendants (uvicorn's workers)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and all its descendants, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            continue
    return total


def _cpu_of(pid: int, tick: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / tick


def _machine_jiffies() -> tuple[int, int]:
    """(busy, all) jiffies of every CPU together, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values[:8]) - idle, sum(values[:8])


class CpuShares:
    """Who used the machine's CPUs during a phase: the server's processes, the PostgreSQL backends of one
    database (found by their process title, sampled twice a second so that a backend that exits keeps
    what it used until its last sample), this process (the load generator), and the machine as a whole
    (/proc/stat), so that "the CPUs were full" can be read from the figures.

        with CpuShares(server_pid, database="bench1") as shares: ...
        shares.seconds -> {"server": s, "postgres": s, "load generator": s, "machine busy": s, "wall": s}
    """

    def __init__(self, server_pid: int, *, database: str | None = None) -> None:
        self.server_pid = server_pid
        self.database = database
        self.seconds: dict[str, float] = {}
        self._backends: dict[int, tuple[float, float]] = {}  # pid -> (CPU at first sight, last)
        self._stop = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample_backends(self) -> None:
        if self.database is None:
            return
        marker = f" {self.database} "
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if not title.startswith("postgres:") or marker not in title:
                continue
            cpu = _cpu_of(pid, self._tick)
            if cpu is not None:
                first = self._backends.get(pid, (cpu, cpu))[0]
                self._backends[pid] = (first, cpu)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample_backends()

    def __enter__(self) -> CpuShares:
        self._sample_backends()
        self._t0 = time.perf_counter()
        self._server0 = tree_cpu_seconds(self.server_pid)
        self._self0 = time.process_time()
        self._machine0 = _machine_jiffies()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample_backends()
        busy, every = (b - a for a, b in zip(self._machine0, _machine_jiffies(), strict=True))
        wall = time.perf_counter() - self._t0
        cpus = os.cpu_count() or 1
        self.seconds = {
            "wall": wall,
            "server": tree_cpu_seconds(self.server_pid) - self._server0,
            "postgres": sum(last - first for first, last in self._backends.values()),
            "load generator": time.process_time() - self._self0,
            "machine busy": cpus * wall * busy / max(1, every),
        }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (the machine is shared: figures depend on it)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Conn:
    """One keep-alive HTTP/1.1 connection that posts JSON and returns the status code."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n"
        )
        status, _, _ = await self.request(head, body)
        return status

    async def post_update(self, body: bytes) -> int:
        """Post one Telegram update to the webhook, with its secret header."""
        return await self.post(WEBHOOK, body, HEADERS)

    async def request(self, head: str, body: bytes = b"") -> tuple[int, dict[bytes, bytes], bytes]:
        """Send one request (`head` ends with its blank line); its status, headers (lower-case names)
        and body. A connection that fails is closed and raises ConnectionError."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        try:
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
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
            self.close()
            raise ConnectionError("connection lost") from None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def text_update(update_id: int, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
    """The Update JSON Telegram posts for a text message in a private chat."""
    person = {"id": chat_id, "is_bot": False, "first_name": "Sam"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": "Sam"},
            "from": person,
            "text": text,
        },
    }


BOT_USER = {
    "id": int(TOKEN.split(":")[0]),
    "is_bot": True,
    "first_name": "Report Hate",
    "username": "bench_bot",
}


def callback_update(
    update_id: int,
    chat_id: int,
    message_id: int,
    data: str,
    *,
    question: str = "",
    markup: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Update JSON Telegram posts for a button press in a private chat: the query, and the bot's
    message the button was on (its text and keyboard, as Telegram includes them)."""
    person = {"id": chat_id, "is_bot": False, "first_name": "Sam", "language_code": "en"}
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": BOT_USER,
        "chat": {"id": chat_id, "type": "private", "first_name": "Sam"},
        "date": int(time.time()),
        "text": question or "?",
    }
    if markup is not None:
        message["reply_markup"] = markup
    return {
        "update_id": update_id,
        "callback_query": {
            "id": str(update_id * 1000 + 7),
            "from": person,
            "message": message,
            "chat_instance": str(-chat_id * 7),
            "data": data,
        },
    }


def encode(update: dict[str, Any]) -> bytes:
    return json.dumps(update, separators=(",", ":")).encode()


def telegram_body(update_id: int, chat_id: int, message_id: int, text: str) -> bytes:
    """The body Telegram posts for one text message in a private chat."""
    return encode(text_update(update_id, chat_id, message_id, text))


# -- running a benchmark: its figures, the machine, the server's process ------------------------------


@dataclass
class Run:
    """What one load run saw: messages sent, answered 200 or not, whole reports, latencies."""

    sent: int = 0
    ok: int = 0
    failed: int = 0
    reports: int = 0
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    async def time(self, request: Awaitable[int], since: float | None = None) -> None:
        """Await one request and count it: answered 200 or not (a lost connection is not), and its
        latency from `since` (when it was due; by default, now)."""
        began = time.perf_counter() if since is None else since
        self.sent += 1
        try:
            status = await request
        except ConnectionError:
            status = 0
        self.latencies.append(time.perf_counter() - began)
        self.ok += status == 200
        self.failed += status != 200


class Reporter(Protocol):
    """One simulated person's client: the messages of a new report, and how one is sent."""

    async def begin(self) -> list[Any]: ...

    async def send(self, message: Any) -> int: ...

    def close(self) -> None: ...


async def closed_loop(new: Callable[[], Reporter], *, people: int, messages: int, seconds: float) -> Run:
    """Each person sends their next message as soon as the previous one was answered; when a report is
    done the same person starts another. Bounded by `messages` and `seconds`."""
    run = Run()
    deadline = time.perf_counter() + seconds
    budget = iter(range(messages))

    async def person() -> None:
        reporter = new()
        try:
            while time.perf_counter() < deadline:
                for message in await reporter.begin():
                    if next(budget, None) is None or time.perf_counter() >= deadline:
                        return
                    await run.time(reporter.send(message))
                run.reports += 1
        finally:
            reporter.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(person() for _ in range(people)))
    run.elapsed = time.perf_counter() - t0
    return run


async def open_loop(reporters: Sequence[Reporter], *, rate: float, seconds: float) -> Run:
    """A fixed offered rate: message i is due at t0 + i/rate, spread over the reporters; latency is
    measured from when it was due (so a slow server cannot hide its queue)."""
    run = Run()
    total = int(rate * seconds)
    people = len(reporters)
    t0 = time.perf_counter() + 0.2

    async def person(k: int) -> None:
        reporter = reporters[k]
        pending: list[Any] = []
        try:
            for i in range(k, total, people):
                if not pending:
                    pending = await reporter.begin()
                    run.reports += 1
                due = t0 + i / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                await run.time(reporter.send(pending.pop(0)), since=due)
        finally:
            reporter.close()

    await asyncio.gather(*(person(k) for k in range(people)))
    run.elapsed = time.perf_counter() - t0
    return run


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] if ordered else 0.0


def stored_counts(config_db: Path) -> tuple[int, int]:
    """(reports, person's lines in transcripts) actually in the database after the run."""
    db = sqlite3.connect(config_db)
    try:
        reports = db.execute("SELECT count(*) FROM report").fetchone()[0]
        lines = db.execute("SELECT count(*) FROM transcript_entry WHERE direction = 'in'").fetchone()[0]
    finally:
        db.close()
    return int(reports), int(lines)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()} {platform.release()}"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving(
    args: Sequence[str], port: int, *, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process started with `args`, once it answers on `port`; stopped at the end."""
    proc = start(args, log=log, env=env)
    try:
        wait_ready(port, proc)
        yield proc
    finally:
        stop(proc)
