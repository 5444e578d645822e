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

# "Yesterday" as people type it in a hurry or in a second language; dates.py reads these too.
YESTERDAY = ("yesterday", "yesturday", "yesterdy", "yestrday", "yesteday", "yestarday", "yday", "ystday")

# Extra typed words for common option keys (labels, numbers and keys always work too).
ALIASES: Mapping[str, Sequence[str]] = {
    "yes": (
        *("y", "yes", "yeah", "yep", "yes please", "ok", "okay", "ya", "yah", "yea", "yh", "yup", "sure"),
        *("yes pls", "yes plz", "yes thanks", "yeah pls", "yes i do", "yes it was", "yes they did"),
    ),
    "no": (
        *("n", "no", "nope", "no thanks", "no thank you", "nah", "na", "no thx", "no ty", "no pls"),
        *("not really", "no one", "nobody", "no i don't", "no it wasn't", "no they didn't", "none"),
    ),
    "not_sure": (
        *("not sure", "unsure", "dont know", "don't know", "do not know", "idk", "maybe", "dunno"),
        *("i dont know", "i don't know", "i do not know", "dont no", "no idea", "not sure really"),
    ),
    "continue": ("ok", "okay", "yes", "go", "next", "ready", "carry on", "continue", "safe", "i'm safe"),
    "safe": (
        *("continue", "ok", "okay", "safe", "i'm safe", "im safe", "i am safe", "safe now", "carry on"),
        *(
            "i'm safe now",
            "im safe now",
            "i am safe now",
            "i'm ok",
            "im ok",
            "i am ok",
            "i'm okay",
            "im okay",
        ),
    ),
    "done": ("done", "finished", "finish", "that's all", "thats all", "that is all", "no more", "end"),
    "none": ("nobody", "no one", "noone", "none"),
    "today": ("today", "2day", "tday", "this morning", "earlier today"),
    "yesterday": YESTERDAY,
    "night": ("night", "nite", "at night", "night time", "late at night"),
    "first": ("no", "first", "never", "1st time", "first time", "never before", "no never", "only once"),
    "before": ("yes", "before", "happened before", "once before", "yes before", "it has", "it did"),
    "victim": (
        "me",
        "myself",
        "to me",
        "it was me",
        "happened to me",
        "it happened to me",
        "i was",
        "victim",
    ),
    "witness": ("i saw", "i saw it", "saw it", "witness", "i seen it", "i was there", "i watched"),
    "someone_else": (
        "someone",
        "someone else",
        "my child",
        "my son",
        "my daughter",
        "my friend",
        "my family",
    ),
    "organisation": ("organisation", "organization", "company", "charity", "my work", "our organisation"),
    "ongoing": ("many times", "all the time", "always", "lots", "a lot", "often", "keeps happening"),
}

_TRAILING = " \t\r\n.!?,;:)"
_SPACES = re.compile(r"\s+")
_BOT_SUFFIX = re.compile(r"^(/\w+)@\w+")


def normalise(text: str) -> str:
    """Lower-case, trim, drop a leading `/`, a Telegram `@botname` and trailing punctuation."""
    text = _BOT_SUFFIX.sub(r"\1", text.strip())
    text = _SPACES.sub(" ", text.strip().lower().replace("’", "'"))
    text = text.lstrip("/").strip()
    return text.rstrip(_TRAILING).strip()


def command(text: str) -> str | None:
    """The command a whole message means, if it is one of the words that work anywhere."""
    return COMMANDS.get(normalise(text))
