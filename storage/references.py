"""Report reference numbers: `HC-` and two groups of four, from an alphabet without look-alikes."""

from __future__ import annotations

import re
import secrets

# No 0/O, 1/I/L: people read these aloud over the phone and copy them by hand.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PATTERN = re.compile(rf"^HC-[{ALPHABET}]{{4}}-[{ALPHABET}]{{4}}$")


def new_reference() -> str:
    """A fresh random reference such as HC-7K3Q-9XPD."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return f"HC-{chars[:4]}-{chars[4:]}"


def is_reference(text: str) -> bool:
    """True for a well-formed reference (already normalised to upper case)."""
    return bool(PATTERN.match(text))
