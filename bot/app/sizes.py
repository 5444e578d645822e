"""Bounded drafts: what to tell a person whose step grew the draft past a size limit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.config import LimitsConfig
from flows import catalog
from flows.types import Draft


def too_big(limits: LimitsConfig, kinds: Mapping[str, str], before: Draft, after: Draft) -> str | None:
    """What to tell the person when this step grew the draft past a size limit, else None.

    Only what grew counts (a draft already over a limit lowered later is not locked), and only the
    answers are measured: history and work in progress are bounded by the flow itself. `kinds` gives
    each question's kind by name.
    """
    for name, value in after.answers.items():
        old = before.answers.get(name)
        if value is old or value == old:
            continue
        told = _over(limits, before.locale, kinds.get(name), value, old)
        if told is not None:
            return told
    return None


def _over(limits: LimitsConfig, locale: str, kind: str | None, value: Any, old: Any) -> str | None:
    """What to say when this answer is past its limit, else None."""
    if isinstance(value, list):
        check = _LIST_CHECKS.get(kind or "")
        return check(limits, locale, value, old or []) if check is not None else None
    if isinstance(value, str) and len(value) > limits.story_characters:
        return catalog.text(locale, "service.answer_too_long")
    return None


def _story(limits: LimitsConfig, locale: str, value: list[Any], old: list[Any]) -> str | None:
    """A story grew (one more part) past its count of messages or of characters."""
    chars = sum(len(part) for part in value if isinstance(part, str))
    over = len(value) > limits.story_messages or chars > limits.story_characters
    return catalog.text(locale, "service.story_full") if len(value) > len(old) and over else None


def _media(limits: LimitsConfig, locale: str, value: list[Any], old: list[Any]) -> str | None:
    """More photos and files than allowed (or than the draft already had, if it had more)."""
    if len(value) > max(limits.evidence_items, len(old)):
        return catalog.text(locale, "service.evidence_full")
    return None


_LIST_CHECKS: dict[str, Callable[[LimitsConfig, str, list[Any], list[Any]], str | None]] = {
    "story": _story,
    "media": _media,
}
