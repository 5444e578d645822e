"""Every word the web chat's templates show comes from the catalog's [web] table, through `t(...)`."""

from __future__ import annotations

import re
from importlib import resources

from bot.channels.web.page import CATALOG_KEYS
from flows.catalog import CATALOGS


def test_every_word_in_the_templates_is_a_declared_catalog_key() -> None:
    folder = resources.files("bot.channels.web") / "templates"
    used = set()
    for entry in folder.iterdir():
        source = entry.read_text("utf-8")
        used |= {f"web.{k}" for k in re.findall(r"""\bt\(\s*["']([a-z_]+)["']""", source)}
        # Nothing but tags, template logic and `t(...)` calls: no English written into a template.
        text = re.sub(r"\{[{%].*?[%}]\}", "", source, flags=re.S)
        text = re.sub(r"<[^>]*>", "", text)
        assert text.strip() == "", (entry.name, text.strip()[:80])
    assert used and used == set(CATALOG_KEYS) - {"web.photo_sent", "web.photo_bad", "web.location_sent"}
    assert set(CATALOG_KEYS) <= set(CATALOGS["en"])
