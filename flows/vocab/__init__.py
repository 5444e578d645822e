"""What people type, as data per language: `flows/vocab/<locale>/<name>.toml`. No I/O after first read.

The words the bot *says* live in `flows/messages/<locale>.toml`; the words it *understands* (option
synonyms, command words, date and time words, danger phrases) live here, one folder per language, so that
translators extend understanding the same way they translate messages. Each table is read once and cached.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

DEFAULT_LOCALE = "en"


@cache
def locales() -> tuple[str, ...]:
    """The languages that have a vocabulary folder."""
    root = resources.files("flows") / "vocab"
    return tuple(sorted(e.name for e in root.iterdir() if e.is_dir() and not e.name.startswith("_")))


@cache
def table(locale: str, name: str) -> Mapping[str, Any]:
    """The parsed `<locale>/<name>.toml`, or English's when that language has no such file."""
    for candidate in (locale, DEFAULT_LOCALE):
        entry = resources.files("flows") / "vocab" / candidate / f"{name}.toml"
        if entry.is_file():
            return tomllib.loads(entry.read_text("utf-8"))
    raise LookupError(f"no vocabulary table {name!r} for {locale!r} or {DEFAULT_LOCALE!r}")
