"""The English input vocabulary: what people type, matched loosely. No I/O.

Output words live in the catalog (`flows/messages/*.toml`); this module only recognises input. The words
that work at any step are fixed by DESIGN.md, so they are English whatever the catalog's locale.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# A typed word -> the command it means. Matched after `normalise`, so "/Help", "HELP!" and "help" agree.
COMMANDS: Mapping[str, str] = {
    "help": "help",
    "back": "back",
    "go back": "back",
    "previous": "back",
    "skip": "skip",
    "stop": "stop",
    "cancel": "stop",
    "quit": "stop",
    "exit": "exit",
    "999": "999",
    "emergency": "999",
    "delete": "delete",
    "start": "start",
}

# Option keys that run a command when pressed as a button or chosen by number.
COMMAND_OPTIONS = frozenset({"help", "back", "skip", "stop", "exit", "delete"})

# Extra typed words for common option keys (labels, numbers and keys always work too).
ALIASES: Mapping[str, Sequence[str]] = {
    "yes": ("y", "yes", "yeah", "yep", "yes please", "ok", "okay"),
    "no": ("n", "no", "nope", "no thanks", "no thank you"),
    "not_sure": ("not sure", "unsure", "dont know", "don't know", "do not know", "idk", "maybe"),
    "continue": ("ok", "okay", "yes", "go", "next", "ready", "carry on", "continue", "safe", "i'm safe"),
    "safe": ("continue", "ok", "okay", "safe", "i'm safe", "im safe", "i am safe", "safe now", "carry on"),
    "done": ("done", "finished", "finish", "that's all", "thats all", "that is all", "no more", "end"),
    "none": ("nobody", "no one", "noone", "none"),
}

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
    return COMMANDS.get(normalise(text))


def status_request(text: str) -> tuple[bool, str | None]:
    """(is this `status ...`, the normalised reference or None if it does not look like one)."""
    match = _STATUS.match(text.strip())
    if match is None:
        return False, None
    return True, normalise_reference(match.group(1))


def normalise_reference(raw: str) -> str | None:
    """`hc-7k3q-9xpd`, `HC 7K3Q 9XPD`, `hc7k3q9xpd` -> `HC-7K3Q-9XPD`; None if it is not that shape."""
    body = re.sub(r"[\s\-_.]", "", raw.strip().upper())
    match = _REF_BODY.match(body)
    if match is None:
        return None
    return f"HC-{match.group(1)}-{match.group(2)}"
