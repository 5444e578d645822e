"""Report reference numbers (`HC-` and two groups of four, from an alphabet without look-alikes) and the
secret code shown once beside each (two groups of four, lower case, from the same alphabet)."""

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


CODE_LENGTH = 8  # 31 ** 8 = 8.5e11 codes, 39.6 bits (docs/limits.md)


def new_code() -> str:
    """A fresh random secret code such as k7mq-4xtd (lower case, so it is not taken for a reference)."""
    chars = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH)).lower()
    return f"{chars[:4]}-{chars[4:]}"


def normalise_code(text: str) -> str:
    """`K7MQ 4XTD`, `k7mq-4xtd` -> `k7mq4xtd`: what is hashed and compared."""
    return re.sub(r"[\s\-_.]", "", text).lower()
