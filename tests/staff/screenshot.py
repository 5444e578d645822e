"""A picture of the HTML export as a browser shows it: headless Chromium, no network, one PNG.

    .venv/bin/python -m tests.staff.screenshot docs/export-html.png

makes two reports through the console conversation (one contactable in the chat, with a staff reply and
a review; one anonymous), exports them as HTML and screenshots the page. The test suite calls `shoot`
too (skipped, with the reason, when no Chromium is installed). Chromium is not a dependency of reportbot.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bot.config import load_config
from bot.staff import Selection, Staff
from storage.db import Database
from storage.schema import upgrade
from tests.conftest import write_config
from tests.staff.conversation import ANONYMOUS, CONTACT_IN_CHAT, converse

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str | None:
    """The first headless-capable Chromium on PATH, if any."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def shoot(html: Path, png: Path, *, width: int = 1100, height: int = 2600) -> None:
    """Render `html` in headless Chromium (offline, no profile) and save a PNG of the top of the page."""
    exe = browser()
    if exe is None:
        raise FileNotFoundError("no Chromium on PATH (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="reportbot-chromium-") as profile:
        subprocess.run(
            [
                exe,
                "--headless",
                "--no-sandbox",  # containers and CI run as root
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--proxy-server=127.0.0.1:9",  # anything that tried to load from the network would fail
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={png.resolve()}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


STAFF_BUBBLE = (0xE2, 0xF5, 0xE6)  # --staff in bot/staff/commands/export/html.py


def around_staff_reply(whole: Path, out: Path, *, above: int = 700, below: int = 250) -> None:
    """Crop a tall screenshot to the end of the first conversation: its last questions and the staff reply."""
    from PIL import Image

    with Image.open(whole) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        column = width // 2
        rows = [y for y in range(height) if rgb.getpixel((column, y)) == STAFF_BUBBLE]
        if not rows:
            raise ValueError("no staff reply found in the screenshot")
        top = max(0, rows[0] - above)
        rgb.crop((0, top, width, min(height, rows[-1] + below))).save(out)


async def sample_export(folder: Path) -> Path:
    """Two reports made through the conversation, one replied to and reviewed, exported as HTML."""
    config = load_config(write_config(folder), env={})
    db = Database(config.database_url)
    await upgrade(db)
    try:
        a = await converse(
            config, db, CONTACT_IN_CHAT, chat_id="chat-a", at=datetime(2026, 3, 18, 18, 40, tzinfo=UTC)
        )
        await converse(config, db, ANONYMOUS, chat_id="chat-b", at=datetime(2026, 4, 2, 23, 30, tzinfo=UTC))
        assert a.reference is not None
        staff = Staff(config, db, who="docs")
        await staff.review(
            a.reference,
            "in-progress",
            "Called the reporter back; passed to the neighbourhood team.",
            now=datetime(2026, 3, 19, 9, 5, tzinfo=UTC),
        )
        await staff.reply(
            a.reference,
            "Thank you for telling us. A police officer from the neighbourhood team will call you this week.",
            now=datetime(2026, 3, 19, 9, 10, tzinfo=UTC),
        )
        out = folder / "export.html"
        await staff.export("html", out, Selection(), now=datetime(2026, 4, 3, 8, 0, tzinfo=UTC))
        return out
    finally:
        await db.dispose()


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "docs/export-html.png")
    end = target.with_name(target.stem + "-end" + target.suffix)
    with tempfile.TemporaryDirectory(prefix="reportbot-docs-") as folder:
        html = asyncio.run(sample_export(Path(folder)))
        shoot(html, target, height=2200)
        whole = Path(folder) / "whole.png"
        shoot(html, whole, height=16000)
        around_staff_reply(whole, end)
    print(f"wrote {target} and {end}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
