"""The English input vocabulary: what people type, matched loosely. No I/O.

Output words live in the catalog (`flows/messages/*.toml`); this module only recognises input. The words
themselves are data in `flows/vocab/<locale>/` (read by `flows.understand`); the words that work at any
step are fixed by DESIGN.md, so they are English whatever the catalog's locale.
"""

from __future__ import annotations

import re

from flows import vocab
from flows.understand import commands

# Option keys that run a command when pressed as a button or chosen by number.
COMMAND_OPTIONS = frozenset({"help", "back", "skip", "stop", "exit", "delete"})

# "Yesterday" as people type it in a hurry or in a second language (data: flows/vocab/en/options.toml).
YESTERDAY: tuple[str, ...] = tuple(str(w) for w in vocab.table("en", "options")["yesterday"])

_TRAILING = " \t\r\n.!?,;:)"
_SPACES = re.compile(r"\s+")
_BOT_SUFFIX = re.compile(r"^(/\w+)@\w+")
_STATUS = re.compile(r"^/?status\b[\s:#-]*(.*)$", re.IGNORECASE | re.DOTALL)
_REF_BODY = re.compile(r"^HC([A-Z0-9]{4})([A-Z0-9]{4})$")


def normalise(text: str) -> str:
    """Lower-case, trim, drop a leading `/`, a Telegram `@botname` and trailing punctuation."""
    text = _BOT_SUFFIX.sub(r"\1", text.strip())
    text = _SPACES.sub(" ", text.strip().lower().replace("’", "'"))
    text = text.lstrip("/").strip()
    return text.rstrip(_TRAILING).strip()


def command(text: str) -> str | None:
    """The command a whole message means, if it is one of the words that work anywhere."""
    return commands(vocab.DEFAULT_LOCALE).get(normalise(text))


def status_request(text: str) -> tuple[bool, str | None]:
    """(is this `status ...`, the normalised reference or None if it does not look like one)."""
    match = _STATUS.match(text.strip())
    if match is None:
        return False, None
    return True, normalise_reference(match.group(1))


def bare_reference(text: str) -> str | None:
    """A message that is only a reference (`HC-7K3Q-9XPD`), which can only mean "news on this report"."""
    raw = text.strip()
    if not raw.upper().startswith("HC") or len(raw) > 16:
        return None
    return normalise_reference(raw)


def normalise_reference(raw: str) -> str | None:
    """`hc-7k3q-9xpd`, `HC 7K3Q 9XPD`, `hc7k3q9xpd` -> `HC-7K3Q-9XPD`; None if it is not that shape."""
    body = re.sub(r"[\s\-_.]", "", raw.strip().upper())
    match = _REF_BODY.match(body)
    if match is None:
        return None
    return f"HC-{match.group(1)}-{match.group(2)}"
