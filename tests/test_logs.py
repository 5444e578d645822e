"""Nothing people type, no chat id, no phone number reaches the logs: canaries planted through the console
conversation and every staff command on this branch, at the most verbose level, are found nowhere in
what the processes wrote to stderr."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.logs import RedactingFilter, redact
from tests.conftest import write_config
from tests.reporting import BY_PHONE, CANARY_NAME, CANARY_PHONE, CANARY_PHONE_E164, CANARY_STORY, script

ROOT = Path(__file__).resolve().parent.parent
CANARIES = (
    CANARY_STORY,
    "Zebedee",
    "Quillfeather",
    CANARY_PHONE,
    CANARY_PHONE_E164,
    "7700900461",
    CANARY_NAME,
)


def reportbot(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(config), "-v", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )


def test_redact_removes_identifiers_and_contact_details() -> None:
    line = "chat 884422117733 phone +44 7700 900461 mail zeb@example.org token 123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    cleaned = redact(line)
    for secret in ("884422117733", "7700 900461", "zeb@example.org", "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"):
        assert secret not in cleaned
    assert cleaned.startswith("chat [redacted] phone")
    # The contact step accepts international numbers and addresses (email-validator), so must the filter.
    cleaned = redact("reach +48 601 234 567 or josé.núñez@bücher.de")
    assert "601 234 567" not in cleaned and "núñez" not in cleaned and "bücher" not in cleaned


def test_third_party_records_keep_their_template_only() -> None:
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: %s %s",
        ("POST", "https://x/bot1:SECRET/sendMessage"),
        None,
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "HTTP Request: %s %s"
    ours = logging.LogRecord(
        "reportbot.service", logging.INFO, __file__, 1, "step=%s chat=%s", ("story", "884422117733"), None
    )
    RedactingFilter().filter(ours)
    assert ours.getMessage() == "step=story chat=[redacted]"


@pytest.mark.slow
def test_canaries_never_reach_the_logs(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    from bot.config import load_config

    lines = script(load_config(config_path, env={}), BY_PHONE)
    chat = reportbot(config_path, "chat", stdin="\n".join(lines) + "\n")
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert CANARY_STORY in chat.stdout  # the person did see their story in the review
    reference = next(word for word in chat.stdout.split() if word.startswith("HC-") and len(word) >= 12)[:12]
    half = reportbot(config_path, "chat", stdin="\n".join(lines[:12]) + "\n")  # a draft left behind
    runs = [
        chat,
        half,
        reportbot(config_path, "db", "current"),
        reportbot(config_path, "audit"),
        reportbot(config_path, "rotate-keys"),
        reportbot(config_path, "purge"),
        reportbot(config_path, "erase", reference),
        reportbot(config_path, "audit", "--reference", reference),
        reportbot(config_path, "db", "upgrade"),
    ]
    logs = "\n".join(run.stderr for run in runs)
    assert "reportbot.service" in logs and "report submitted reference=HC-" in logs  # the logs did say things
    for canary in CANARIES:
        assert canary not in logs, canary
    for run in runs[2:]:
        for canary in CANARIES:
            assert canary not in run.stdout, canary  # staff commands print counts, never content
