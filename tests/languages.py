"""The languages the tests speak: the real catalogs, and small test catalogs for the ones not merged yet.

`installed` (a fixture) makes sure Polish, Romanian and Urdu exist in `flows.catalog.CATALOGS`: a real
catalog (flows/messages/<locale>.toml) is used as it is; for a locale without one, the test catalog in
tests/flows/languages/<locale>.toml (a few keys; English for the rest) stands in, for that test only.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows import catalog, languages

FIXTURES = Path(__file__).parent / "flows" / "languages"
LOCALES = ("pl", "ro", "ur")
ALL = ("en", *LOCALES)


def test_catalog(locale: str) -> dict[str, str]:
    """English, with the test file's keys in its place (the test catalogs are partial)."""
    english = dict(catalog.CATALOGS[catalog.DEFAULT_LOCALE])
    own = catalog._flatten(tomllib.loads((FIXTURES / f"{locale}.toml").read_text("utf-8")))
    return {**english, **own}


test_catalog.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def real(locale: str) -> bool:
    """Whether the locale's real catalog is shipped (not a test stand-in)."""
    return (Path(catalog.__file__).parent / "messages" / f"{locale}.toml").is_file()


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, ...]]:
    """Every test language has a catalog; yields the locales in the order they are offered."""
    for locale in LOCALES:
        if locale not in catalog.CATALOGS:
            monkeypatch.setitem(catalog.CATALOGS, locale, test_catalog(locale))  # type: ignore[index]
    languages.forget()
    yield ALL
    languages.forget()
