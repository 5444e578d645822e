"""Shared by the benchmarks and the crash test: a config, the server as a subprocess, the fake Bot API
on loopback, a lean HTTP/1.1 client, and Telegram update JSON for simulated people.

The client is a few lines over asyncio streams (keep-alive, Content-Length only) so that the load
generator costs little CPU on a two-core machine and the server gets the other core.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TOKEN = "123456:TEST-token-for-the-fake-bot-api"
SECRET = "bench-webhook-secret-0123456789"
WEBHOOK = "/telegram/webhook"


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


def wait_ready(port: int, proc: subprocess.Popen[bytes] | None = None, within: float = 20.0) -> None:
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
    """The process's peak resident memory (VmHWM) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Conn:
    """One keep-alive HTTP/1.1 connection that posts JSON and returns the status code."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n"
        )
        try:
            self.writer.write(head.encode("latin-1") + body)
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionError("closed")
            length = 0
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await self.reader.readexactly(length)
            return int(status_line.split()[1])
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


def encode(update: dict[str, Any]) -> bytes:
    return json.dumps(update, separators=(",", ":")).encode()


HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
