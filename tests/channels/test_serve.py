"""`reportbot serve` as an operator runs it: a real process on loopback, one worker or several."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_health_checks(config_path: Path, tmp_path: Path, workers: int) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTBOT_")}
    env["REPORTBOT_SERVER__WORKERS"] = str(workers)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "--config", str(config_path), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        answer = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, "the server did not come up"
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok"}
        assert (
            httpx.get(f"http://127.0.0.1:{port}/telegram/webhook", timeout=2).status_code == 404
        )  # not configured
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=20)
    if workers > 1:
        assert output.count("Started server process") >= workers, output
