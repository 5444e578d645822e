"""Logging that cannot leak what people typed: a filter on every handler, installed by the CLI.

Our own loggers (`reportbot.*`) log step names, references, counts and error classes only, and values
from outside (a chat type, a channel) only through `known`, which maps anything unexpected to "other";
this module is also the net under that rule. For every record it
- drops the arguments of third-party records (httpx logs request URLs, which carry the Telegram bot
  token; uvicorn, SQLAlchemy and the drivers can echo payloads and SQL parameters): the message
  template stays, the values go;
- redacts anything left that looks like a phone number, an email address, a long run of digits (chat
  ids, update ids), a Telegram bot token, a Twilio id or a Fernet token, in the message and in
  tracebacks (SQLAlchemy errors quote their parameters).
"""

from __future__ import annotations

import logging
import re
import sys

OURS = ("reportbot", "bot", "flows", "storage")
# Third-party loggers whose arguments are never payloads (server start-up, migration names): their
# values are kept, still redacted, so that operators can read them.
PLAIN = ("uvicorn.error", "alembic.runtime.migration")
REDACTED = "[redacted]"

_PATTERNS = (
    re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}"),  # Telegram bot token
    re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"),  # Fernet token
    re.compile(r"\b(?:AC|SM|MM|MG|SK)[0-9a-fA-F]{32}\b"),  # Twilio account / message ids
    re.compile(r"[\w.%+-]+@[\w.-]+\.\w{2,}"),  # email, including accented ones (josé@bücher.de)
    re.compile(r"(?:whatsapp:)?\+?\d[\d ()./-]{6,}\d"),  # phone numbers, chat ids with separators
    re.compile(r"\d{6,}"),  # long digit runs: chat ids, update ids
    re.compile(r"\[parameters: .*?\]", re.DOTALL),  # SQLAlchemy's echo of bound values
)


# Values from outside that our log lines name, each from a known set; anything else is logged as "other"
# (an attacker-chosen chat type could otherwise write newlines, fake records or canaries into the log).
CHANNELS = frozenset({"telegram", "whatsapp", "console", "web"})
CHAT_TYPES = frozenset({"private", "group", "supergroup", "channel", "sender"})
OTHER = "other"


def known(value: object, allowed: frozenset[str]) -> str:
    """`value` if it is one of `allowed`, else "other": the only way an outside value reaches a log line."""
    return value if isinstance(value, str) and value in allowed else OTHER


def redact(text: str) -> str:
    """Replace everything that looks like an identifier or contact detail."""
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _ours(name: str) -> bool:
    return any(name == root or name.startswith(root + ".") for root in OURS)


class RedactingFilter(logging.Filter):
    """Rewrites each record in place so that no handler ever sees the raw values."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_reportbot_redacted", False):
            return True
        # Third-party records keep their template only: their arguments may be payloads.
        keep_args = _ours(record.name) or record.name in PLAIN
        message = record.getMessage() if keep_args else str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._reportbot_redacted = True
        return True


def install(level: int = logging.WARNING) -> RedactingFilter:
    """Log to stderr at `level` through the redacting filter (on every root handler, present or later)."""
    root = logging.getLogger()
    if not root.handlers:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    flt = RedactingFilter()
    for each in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in each.filters):
            each.addFilter(flt)
    # Third-party loggers that keep their own handlers (uvicorn's defaults) are sent through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore", "telegram", "twilio"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # start-up noise
    if level > logging.DEBUG:
        # Even at INFO, httpx logs every request URL (with the bot token): keep it to warnings.
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return flt
