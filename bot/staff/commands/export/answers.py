"""The offender and harm answers of a report, as stored and as exported.

A report stores them structured (flows.types.Offender and Harm): `{"description", "known", "recognise"}`
and `{"hurt", "needs_help_now", "property_damaged"}`. Reports stored before that keep one string,
`their words; known=no; recognise=yes`. jsonl and csv give that string for both (the `offender` and
`injuries` export fields of DESIGN.md): an old report exports exactly as it did, a new one the same way.
The HTML page reads the answers one by one and names them.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

CODE_LETTERS = frozenset(string.ascii_lowercase + "_")


@dataclass(frozen=True)
class Answers:
    """One group of answers read from a report: the person's words, then (question, code) pairs."""

    words: tuple[str, ...]  # as typed (an old report's string: each part that is not an answer)
    codes: tuple[tuple[str, str], ...]

    def text(self) -> str | None:
        """`their words; known=no; recognise=yes`, or None when nothing was answered."""
        return "; ".join([*self.words, *(f"{question}={code}" for question, code in self.codes)]) or None


@dataclass(frozen=True)
class Group:
    """A group of questions whose answers are stored together, with their names for staff."""

    questions: Mapping[str, str]  # field of the stored object -> what it asked, in the order asked
    words: str | None = None  # the field holding the person's own words, if the group has one

    def read(self, stored: Any) -> Answers:
        """The answers from either stored form; anything else reads as nothing answered."""
        if isinstance(stored, Mapping):
            said = stored.get(self.words) if self.words else None
            codes = [(q, str(stored[q])) for q in self.questions if stored.get(q)]
            return Answers((said,) if isinstance(said, str) and said else (), tuple(codes))
        if isinstance(stored, str) and stored:
            return self._read_text(stored)
        return Answers((), ())

    def _read_text(self, stored: str) -> Answers:
        words, codes = [], []
        for part in stored.split("; "):
            question, equals, code = part.partition("=")
            if equals and question in self.questions and code and set(code) <= CODE_LETTERS:
                codes.append((question, code))
            else:
                words.append(part)
        return Answers(tuple(words), tuple(codes))

    def text(self, stored: Any) -> str | None:
        """The jsonl and csv form. A string stored by an older version is given as it was stored."""
        return stored if isinstance(stored, str) else self.read(stored).text()

    def lines(self, stored: Any, label: Callable[[str], str]) -> str:
        """For people: the words, then each answer named (`Knows who they are: No`), one a line."""
        answers = self.read(stored)
        named = [f"{self.questions[question]}: {label(code)}" for question, code in answers.codes]
        return "\n".join([*answers.words, *named])


OFFENDER = Group(
    {"known": "Knows who they are", "recognise": "Would recognise them"},
    words="description",
)
HARM = Group(
    {
        "hurt": "Anyone hurt",
        "needs_help_now": "Needed a doctor or ambulance then",
        "property_damaged": "Property damaged",
    }
)


def flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record with `offender` and `injuries` in their jsonl and csv form (same keys, same order)."""
    return {
        **record,
        "offender": OFFENDER.text(record.get("offender")),
        "injuries": HARM.text(record.get("injuries")),
    }
