"""Checking the phone number or email someone gives for contact. No I/O.

UK numbers only (07..., 01/02/03..., +44 or 0044 with an optional "(0)"), returned in +44 form;
emails get a basic shape check only (the only real check is sending to them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EMAIL = re.compile(r"[^@\s,;<>()]+@[^@\s,;<>()]+\.[a-zA-Z]{2,}")
_PHONE_CHARS = re.compile(r"^[\d\s\-().+]+$")


@dataclass(frozen=True, slots=True)
class Reach:
    """A validated phone (E.164, +44...) and/or email; `ok` is False when what was typed is not usable."""

    phone: str | None = None
    email: str | None = None
    ok: bool = False


def _national(digits: str) -> str | None:
    """The number after the country code or trunk zero: +44 / 0044 / 0."""
    for prefix in ("+44", "0044"):
        if digits.startswith(prefix):
            return digits[len(prefix) :]
    if digits.startswith("0") and "+" not in digits:
        return digits[1:]
    return None


def uk_phone(raw: str) -> str | None:
    """A UK phone number in +44 form, or None if `raw` is not one."""
    raw = raw.strip()
    if not raw or not _PHONE_CHARS.match(raw):
        return None
    national = _national(re.sub(r"[^\d+]", "", raw.replace("(0)", "")))
    if national is None or "+" in national or not re.fullmatch(r"[1-9]\d{8,9}", national):
        return None
    if national.startswith("7") and len(national) != 10:  # mobiles are 07xxx xxxxxx
        return None
    return "+44" + national


def email_address(raw: str) -> str | None:
    """A basic-shape email with a lower-cased domain, or None."""
    raw = raw.strip().strip("<>.,;")
    if len(raw) > 254 or _EMAIL.fullmatch(raw) is None:
        return None
    local, _, domain = raw.rpartition("@")
    if ".." in domain or domain.startswith(".") or domain.startswith("-"):
        return None
    return f"{local}@{domain.lower()}"


def parse_reach(text: str) -> Reach:
    """Find a phone number and/or an email in what was typed; every part must be valid."""
    emails = _EMAIL.findall(text)
    rest = _EMAIL.sub(" ", text)
    rest = re.sub(
        r"\b(or|and|email|e-mail|phone|mobile|tel|call|text|me|on|at)\b|[:/&]", " ", rest, flags=re.I
    )
    rest = rest.strip(" ,;.")
    email = email_address(emails[0]) if emails else None
    if len(emails) > 1 or (emails and email is None):
        return Reach()
    phone = None
    if rest:
        phone = uk_phone(rest)
        if phone is None:
            return Reach()
    return Reach(phone=phone, email=email, ok=bool(phone or email))
