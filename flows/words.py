"""The English input vocabulary: what people type, matched loosely. No I/O.

Output words live in the catalog (`flows/messages/*.toml`); this module only recognises input. The words
themselves are data in `flows/vocab/<locale>/` (read by `flows.understand`); the words that work at any
step are fixed by DESIGN.md, so they work in English whatever the person's language, besides that
language's own words for them.
"""

from __future__ import annotations

import re

from flows import vocab
from flows.understand import commands, language_words

# Option keys that run a command when pressed as a button or chosen by number.
COMMAND_OPTIONS = frozenset({"help", "back", "skip", "stop", "exit", "delete"})

# "Yesterday" as people type it in a hurry or in a second language (data: flows/vocab/en/options.toml).
YESTERDAY: tuple[str, ...] = tuple(str(w) for w in vocab.table("en", "options")["yesterday"])

_TRAILING = " \t\r\n.!?,;:)"
_SPACES = re.compile(r"\s+")
_BOT_SUFFIX = re.compile(r"^(/\w+)@\w+")


def normalise(text: str) -> str:
    """Lower-case, trim, drop a leading `/`, a Telegram `@botname` and trailing punctuation."""
    text = _BOT_SUFFIX.sub(r"\1", text.strip())
    text = _SPACES.sub(" ", text.strip().lower().replace("’", "'"))
    text = text.lstrip("/").strip()
    return text.rstrip(_TRAILING).strip()


def command(text: str, locale: str = vocab.DEFAULT_LOCALE) -> str | None:
    """The command a whole message means, if it is one of the words that work anywhere: the English words
    (DESIGN.md) and the person's language's own; `language` in any language."""
    said = normalise(text)
    found = commands(locale).get(said) or commands(vocab.DEFAULT_LOCALE).get(said)
    return found or ("language" if said in language_words() else None)


def command_in_any_language(text: str) -> str | None:
    """The command a whole message means in any language there is: for decisions taken before the
    conversation (and its language) is read, such as letting `exit` through a busy chat's limit."""
    said = normalise(text)
    for locale in (vocab.DEFAULT_LOCALE, *vocab.locales()):
        found = commands(locale).get(said)
        if found is not None:
            return found
    return "language" if said in language_words() else None
