"""Report reference numbers, for the chat and staff alike: make one, read one however it was typed. No I/O.

A reference is `HC-` and two groups of four from an alphabet without look-alikes (no 0/O, 1/I/L):
people read them aloud over the phone and copy them by hand. Whatever form someone types, the chat
(`status hc7k3q9xpd`) and every staff command (`reportbot reply "HC 7K3Q 9XPD" ...`) read it with
`parse_reference`, so the two can never disagree; storage keeps only the canonical string.
"""

from __future__ import annotations

import re
import secrets

PREFIX = "HC"
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
GROUP = 4  # characters in each of the two groups
EXAMPLE = "HC-7K3Q-9XPD"

_CANONICAL = re.compile(rf"^{PREFIX}-[{ALPHABET}]{{{GROUP}}}-[{ALPHABET}]{{{GROUP}}}$")
# Between the parts people put spaces, hyphens, dots, underscores, or the dashes phones and word
# processors substitute for a hyphen (U+2010 to U+2015, the minus sign U+2212).
_SEPARATORS = re.compile(r"[\s\-_.\u2010-\u2015\u2212]")
# The shape of a reference, look-alike letters included: someone meant a reference, even a wrong one.
_SHAPE = re.compile(rf"^{PREFIX}[A-Z0-9]{{{2 * GROUP}}}$")
_VALID = re.compile(rf"^{PREFIX}([{ALPHABET}]{{{GROUP}}})([{ALPHABET}]{{{GROUP}}})$")
_STATUS = re.compile(r"^/?status\b[\s:#-]*(.*)$", re.IGNORECASE | re.DOTALL)
# `add HC-7K3Q-9XPD [code]`: this new report is about the same thing as an earlier one (issue 18).
_ADD = re.compile(r"^/?add\b[\s:#-]*(.*)$", re.IGNORECASE | re.DOTALL)
_LONGEST = len("hc - 7k3q - 9xpd")  # a bare message longer than this is a sentence, not a reference


def format_reference(chars: str) -> str:
    """Eight characters of the alphabet as a reference: `7K3Q9XPD` -> `HC-7K3Q-9XPD`."""
    if len(chars) != 2 * GROUP or any(c not in ALPHABET for c in chars):
        raise ValueError("a reference is eight characters from the reference alphabet")
    return f"{PREFIX}-{chars[:GROUP]}-{chars[GROUP:]}"


def new_reference() -> str:
    """A fresh random reference such as HC-7K3Q-9XPD (`secrets`, so none can be guessed from another)."""
    return format_reference("".join(secrets.choice(ALPHABET) for _ in range(2 * GROUP)))


def is_reference(text: str) -> bool:
    """True for a reference in its canonical form (`HC-7K3Q-9XPD`), as stored."""
    return bool(_CANONICAL.match(text))


def _compact(text: str) -> str:
    return _SEPARATORS.sub("", text.strip().upper())


def parse_reference(text: str) -> str | None:
    """`hc-7k3q-9xpd`, `HC 7K3Q 9XPD`, `hc7k3q9xpd` -> `HC-7K3Q-9XPD`; None if it is not a reference.

    A look-alike (0, O, 1, I or L) is never in a reference, so a text with one is refused, not guessed.
    """
    match = _VALID.match(_compact(text))
    if match is None:
        return None
    return f"{PREFIX}-{match.group(1)}-{match.group(2)}"


def status_request(text: str) -> tuple[bool, str | None]:
    """Is this message asking for news on a report, and about which one?

    `status <reference>`, or a message that is only a reference (which can mean nothing else), is a
    request: (True, the reference), or (True, None) when what follows `status`, or the bare
    reference, is not a valid one (a look-alike letter, a group too short). Anything else: (False, None).
    """
    match = _STATUS.match(text.strip())
    if match is not None:
        # A secret code may follow the reference (`status_code`): the reference is its first characters.
        return True, parse_reference(_compact(match.group(1))[: len(PREFIX) + 2 * GROUP])
    raw = text.strip()
    if len(raw) > _LONGEST or not _SHAPE.match(_compact(raw)):
        return False, None
    return True, parse_reference(raw)


def status_code(text: str) -> str | None:
    """The secret code after the reference in `status HC-7K3Q-9XPD k7mq-4xtd` (`k7mq4xtd`), if any. The
    service checks it; here it is only read."""
    match = _STATUS.match(text.strip())
    if match is None:
        return None
    return _compact(match.group(1))[len(PREFIX) + 2 * GROUP :].lower() or None


def add_request(text: str) -> tuple[bool, str | None]:
    """Is this message `add <reference> [code]` (join this report to an earlier one), and which one?

    (True, the reference), (True, None) when what follows `add` is not a valid reference, or (False, None)
    for anything else. Only `add` followed by something that starts like a reference counts: "add a photo"
    is not a request."""
    match = _ADD.match(text.strip())
    if match is None:
        return False, None
    rest = _compact(match.group(1))
    if not rest.startswith(PREFIX):  # "add 2 photos", "add that he was drunk": words for the question
        return False, None
    return True, parse_reference(rest[: len(PREFIX) + 2 * GROUP])


def add_code(text: str) -> str | None:
    """The secret code after the reference in `add HC-7K3Q-9XPD k7mq-4xtd`, if any."""
    match = _ADD.match(text.strip())
    if match is None:
        return None
    return _compact(match.group(1))[len(PREFIX) + 2 * GROUP :].lower() or None
