"""Checking the phone number or email someone gives for contact. No I/O.

Phone numbers go through `phonenumbers` (Google's libphonenumber data): a number typed the UK way
("07700 900123") is read as a UK one, a number from anywhere else needs its + or 00 and country code
("+48 601 234 567"), and every number comes back in E.164 ("+447700900123"), the form staff dial and
exports carry. Emails go through `email-validator` for their shape only: checking that the domain takes
mail would mean asking DNS, and flows/ never does I/O (the real check is writing to them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# A number with no + or 00 is read as typed in this country.
HOME_REGION = "GB"

# Ofcom keeps these UK ranges for TV and radio drama: never anyone's number, so libphonenumber calls them
# invalid, but they are what examples, demos and tests use (07700 900123 is the catalog's own example).
# A prefix in E.164 and the digits that follow it.
_DRAMA = (("+447700900", 3), ("+441632960", 3))

_PHONE_CHARS = re.compile(r"^[\d\s\-().+]+$")  # no letters: no vanity numbers, no "ext 12" dropped unseen
_EMAIL_LIKE = re.compile(r"[^\s,;<>()]*@[^\s,;<>()]*")  # a word with an @: email-validator decides


@dataclass(frozen=True, slots=True)
class Reach:
    """A validated phone (E.164) and/or email; `ok` is False when what was typed is not usable."""

    phone: str | None = None
    email: str | None = None
    ok: bool = False


def _drama(e164: str) -> bool:
    return any(e164.startswith(prefix) and len(e164) == len(prefix) + rest for prefix, rest in _DRAMA)


def phone_number(raw: str, region: str = HOME_REGION) -> str | None:
    """A phone number in E.164 (`+447700900123`), or None if `raw` is not a real number."""
    raw = raw.strip()
    if not raw or not _PHONE_CHARS.match(raw):
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not (phonenumbers.is_valid_number(number) or _drama(e164)):
        return None
    return e164


def email_address(raw: str) -> str | None:
    """An email address with a lower-cased domain, if its shape is right; else None."""
    raw = raw.strip().strip("<>.,;")
    try:
        return validate_email(raw, check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def parse_reach(text: str) -> Reach:
    """Find a phone number and/or an email in what was typed; every part must be valid."""
    emails = _EMAIL_LIKE.findall(text)
    rest = _EMAIL_LIKE.sub(" ", text)
    rest = re.sub(
        r"\b(or|and|email|e-mail|phone|mobile|tel|call|text|me|on|at)\b|[:/&]", " ", rest, flags=re.I
    )
    rest = rest.strip(" ,;.")
    email = email_address(emails[0]) if emails else None
    if len(emails) > 1 or (emails and email is None):
        return Reach()
    phone = None
    if rest:
        phone = phone_number(rest)
        if phone is None:
            return Reach()
    return Reach(phone=phone, email=email, ok=bool(phone or email))
