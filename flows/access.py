"""Words that say the phone is hard for this person: "I am deaf", "can't speak", "I use BSL". No I/O.

Said at any question, they are answered with the ways to reach the police and 999 by text (from the
catalog), the question is asked again, and the contact question then offers text and email, not calls.
The words are data: `flows/vocab/<locale>/access.toml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from flows import understand, vocab


@dataclass(frozen=True, slots=True)
class Aside:
    """What a message says besides answering the question: `key` is the catalog text to answer it with,
    `note` an answer to remember, and `only` whether the message says nothing else."""

    key: str | None = None
    note: str | None = None
    only: bool = False


@cache
def _words(locale: str) -> tuple[tuple[str, ...], frozenset[str]]:
    table = vocab.table(locale, "access")["no_calls"]
    phrases = tuple(sorted({understand.fold(str(p)) for p in table["phrases"]}, key=len, reverse=True))
    return phrases, frozenset(understand.fold(str(w)) for w in table["fillers"])


def assess(text: str, locale: str) -> Aside:
    """Whether `text` says phone calls are hard for the person, and whether it says only that."""
    phrases, fillers = _words(locale)
    said = f" {understand.fold(text)} "
    if not any(f" {phrase} " in said for phrase in phrases):
        return Aside()
    rest = said
    for phrase in phrases:
        rest = rest.replace(f" {phrase} ", " ")
    only = all(word in fillers for word in rest.split())
    return Aside(key="access.no_calls", note="no_calls", only=only)
