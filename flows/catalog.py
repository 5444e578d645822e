"""The words people see, loaded from `flows/messages/<locale>.toml`. No I/O after import.

Each catalog is a TOML file keyed by step (`[what] ask = "..."`); nested tables flatten to dotted keys
(`what.ask`, `option.verbal`). Texts use `str.format` placeholders such as `{reference}` or `{operator}`.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

DEFAULT_LOCALE = "en"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = str(value)
    return flat


def _load() -> dict[str, dict[str, str]]:
    catalogs: dict[str, dict[str, str]] = {}
    folder = resources.files("flows") / "messages"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            catalogs[entry.name.removesuffix(".toml")] = _flatten(tomllib.loads(entry.read_text("utf-8")))
    return catalogs


# locale -> {dotted key: text}; read once at import, never written.
CATALOGS: Mapping[str, Mapping[str, str]] = _load()


@lru_cache(maxsize=4096)  # catalog texts only: each is parsed once, not at every config check
def placeholders(template: str) -> frozenset[str]:
    """The `{names}` a catalog text expects."""
    return frozenset(name for _, name, _, _ in string.Formatter().parse(template) if name)


def text(locale: str, key: str, **fields: object) -> str:
    """The text for `key` in `locale` (falling back to English), with placeholders filled."""
    catalog = CATALOGS.get(locale, CATALOGS[DEFAULT_LOCALE])
    template = catalog.get(key)
    if template is None:
        template = CATALOGS[DEFAULT_LOCALE][key]
    return template.format(**fields)


def has(locale: str, key: str) -> bool:
    """Whether `key` exists in `locale` or in the English fallback."""
    return key in CATALOGS.get(locale, {}) or key in CATALOGS[DEFAULT_LOCALE]
