"""Export time and peak memory for 1,000, 10,000 and 100,000 reports with transcripts.

    .venv/bin/python bench/export.py [--sizes 1000,10000,100000] [--lines 20] [--format jsonl]

Reports and their transcript lines are inserted straight into a fresh SQLite database (the service's
one step would take hours for 100,000 conversations); every stored value is a real encrypted token under
the deployment's key, drawn from a pool so that filling the database is quick, and every one of them is
decrypted again by the export. Each export then runs in a fresh process (`reportbot`'s own code, the
same as `reportbot export`) that reports its peak resident memory (VmHWM) and how far that is above what
it held before the export started. Memory must stay flat: the peak at the largest size within 20% of
the peak at the smallest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import load_config  # noqa: E402
from flows.references import ALPHABET, format_reference  # noqa: E402
from storage.crypto import Cipher  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import Report  # noqa: E402
from storage.schema import upgrade  # noqa: E402
from tests.conftest import write_config  # noqa: E402

KINDS = ("verbal", "physical", "property", "online", "harassment", "written", "other")
MOTIVATIONS = ("race", "religion", "sexual_orientation", "disability", "transgender", "other", "not_sure")
PARTNERS = ("police", "council")
START = datetime(2025, 1, 1, tzinfo=UTC)
BATCH = 5000


def reference(n: int) -> str:
    chars = []
    for _ in range(8):
        n, digit = divmod(n, len(ALPHABET))
        chars.append(ALPHABET[digit])
    return format_reference("".join(chars))


def pools(cipher: Cipher, rnd: random.Random) -> tuple[list[str], list[str]]:
    """Encrypted report bodies and transcript lines of realistic length."""
    story = (
        "He followed me from the bus stop shouting about where I come from, then pushed me against the "
        "wall outside the chemist on the High Street. Two people saw it and one of them filmed it. "
    )
    sealed = [
        cipher.encrypt_json(
            {
                "description": story * rnd.randint(1, 4) + f"({i})",
                "occurred_at_text": "last Tuesday, evening",
                "location": {"text": f"{i} High Street, Townsville", "latitude": None, "longitude": None},
                "offender": "Tall man in a red coat; known=no; recognise=yes",
                "injuries": "hurt=yes; property_damaged=no",
                "witnesses": "yes",
                "evidence": [{"ref": f"AgACAgQAAxkBAAI{i:06d}", "content_type": "photo"}],
                "contact": None,
            }
        )
        for i in range(200)
    ]
    lines = [
        cipher.encrypt(
            "How would you like us to contact you about this? We only share your name and details with "
            "people you agree to.\n\n1. Here in this chat\n2. Phone call\n3. Text message only\n4. Email\n"
            f"5. Don't contact me ({i})"
            if i % 2
            else f"It happened outside the shop, he shouted at me ({i})"
        )
        for i in range(400)
    ]
    return sealed, lines


async def fill(config_path: Path, start: int, stop: int, lines_per_report: int) -> None:
    """Insert reports start..stop-1 (ids start+1..stop) and their transcripts."""
    config = load_config(config_path, env={})
    cipher = Cipher(config.security.encryption_keys, config.security.pseudonym_key)
    rnd = random.Random(start)
    sealed, lines = pools(cipher, rnd)
    db = Database(config.database_url)
    await upgrade(db)
    try:
        for first in range(start, stop, BATCH):
            last = min(stop, first + BATCH)
            reports, entries = [], []
            for n in range(first, last):
                at = START + timedelta(minutes=n * 5)
                reports.append(
                    {
                        "id": n + 1,
                        "reference": reference(n),
                        "submitted_at": at,
                        "channel": ("telegram", "whatsapp", "console")[n % 3],
                        "role": "victim",
                        "incident_types": rnd.sample(KINDS, 2),
                        "motivations": rnd.sample(MOTIVATIONS, 1),
                        "occurred_on": at.date(),
                        "repeat": "first",
                        "support_requested": True,
                        "anonymous": True,
                        "share_with": list(PARTNERS[: 1 + n % 2]),
                        "status": "new",
                        "sealed_enc": sealed[n % len(sealed)],
                    }
                )
                stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DATETIME text
                for seq in range(1, lines_per_report + 1):
                    entries.append(
                        (
                            n + 1,
                            seq,
                            stamp,
                            "in" if seq % 2 else "out",
                            "person" if seq % 2 else "bot",
                            lines[(n + seq) % len(lines)],
                        )
                    )
            async with db.transaction() as s:
                await s.execute(insert(Report), reports)
                # The bulk of the rows, through the driver directly: SQLAlchemy's per-row work would
                # dominate the fill time and says nothing about the export.
                conn = await s.connection()
                await conn.exec_driver_sql(
                    "INSERT INTO transcript_entry (report_id, seq, at, direction, author, text_enc) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    entries,
                )
    finally:
        await db.dispose()


def vm(field: str) -> int:
    """A /proc/self/status figure in kB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def child(config_path: Path, fmt: str, out: Path) -> None:
    """Run one export in this (fresh) process and print its figures as JSON."""
    from bot.staff import Selection, Staff

    config = load_config(config_path, env={})
    db = Database(config.database_url)
    staff = Staff(config, db, who="bench")
    # Warm up imports and the connection so that the baseline holds everything but the export itself.
    async with db.transaction() as s:
        await s.connection()
    before = vm("VmRSS")
    started = time.perf_counter()
    count = await staff.export(fmt, out, Selection())
    seconds = time.perf_counter() - started
    await db.dispose()
    print(
        json.dumps(
            {
                "count": count,
                "seconds": seconds,
                "peak_kb": vm("VmHWM"),
                "before_kb": before,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--lines", type=int, default=20, help="transcript lines per report")
    parser.add_argument("--format", default="jsonl", choices=("jsonl", "csv", "html"))
    parser.add_argument("--child", nargs=3, metavar=("CONFIG", "FORMAT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(Path(args.child[0]), args.child[1], Path(args.child[2])))
        return 0

    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="reportbot-bench-") as folder:
        work = Path(folder)
        config_path = write_config(work)
        print(f"export bench: format {args.format}, {args.lines} transcript lines per report, SQLite")
        print(
            f"{'reports':>8} {'fill s':>7} {'export s':>9} {'reports/s':>10} {'file MB':>8} {'peak RSS MB':>12} {'export MB':>10}"
        )
        have = 0
        peaks = []
        for size in sizes:
            started = time.perf_counter()
            asyncio.run(fill(config_path, have, size, args.lines))
            fill_s = time.perf_counter() - started
            have = size
            out = work / f"export-{size}.{args.format}"
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(config_path), args.format, str(out)],
                check=True,
                capture_output=True,
                text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            assert figures["count"] == size, figures
            peaks.append(figures["peak_kb"])
            print(
                f"{size:>8} {fill_s:>7.1f} {figures['seconds']:>9.1f} {size / figures['seconds']:>10.0f} "
                f"{out.stat().st_size / 1e6:>8.1f} {figures['peak_kb'] / 1024:>12.1f} "
                f"{(figures['peak_kb'] - figures['before_kb']) / 1024:>10.1f}"
            )
            out.unlink()
        growth = peaks[-1] / peaks[0] - 1
        verdict = "flat" if growth <= 0.20 else "NOT FLAT"
        print(
            f"peak RSS at {sizes[-1]:,} reports is {growth:+.1%} of the peak at {sizes[0]:,} "
            f"(limit +20%): {verdict}"
        )
        return 0 if growth <= 0.20 else 1


if __name__ == "__main__":
    raise SystemExit(main())
