"""Pictures of the web chat as a browser shows it, from the real page (`build_app` under uvicorn, Debian's
Chromium through Playwright, no network):

    .venv/bin/python -m tests.channels.web.screenshots docs/

writes `webchat-phone.png` (390 px wide) and `webchat-desktop.png` (1280 px wide), each at the "what
happened?" question with two answers ticked.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.channels.web.server import Person, chromium, fake_sites, serving, web_config

SIZES = {"phone": (390, 844), "desktop": (1280, 860)}


def shoot(out: Path) -> list[Path]:
    """Make the pictures in `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    made = []
    with tempfile.TemporaryDirectory(prefix="reportbot-webchat-") as folder:
        config = web_config(Path(folder))
        with serving(config) as server, chromium() as browser:
            for name, (width, height) in SIZES.items():
                ctx = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
                fake_sites(ctx)
                try:
                    p = Person(ctx.new_page(), server.url)
                    p.open()
                    for label in ("Start", "Continue", "No", "It happened to me"):
                        p.choose(label)
                    p.say("Two men shouted at me outside the shop and posted about me online.")
                    p.choose("Done")
                    p.tick("Verbal abuse or threats")
                    p.tick("Online abuse")
                    p.page.evaluate("document.activeElement && document.activeElement.blur()")
                    p.page.mouse.move(0, height - 1)
                    p.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
                    path = out / f"webchat-{name}.png"
                    p.page.screenshot(path=str(path))
                    made.append(path)
                finally:
                    ctx.close()
    return made


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs")
    for path in shoot(out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
