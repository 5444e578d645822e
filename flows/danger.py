"""The safety net: does free text suggest danger now, or thoughts of self-harm? No I/O.

Recall matters more than precision: a needless 999 reminder costs one short message, a missed one may cost
much more. But false alarms on stories of the past ("a man behind me grabbed my hijab") erode trust, so
each part of a sentence is read for its time: words about now ("is", "still", "tonight") keep the alarm,
a past with no now in it ("last week", "was", "grabbed") silences the words that are only danger now
(weapons, being followed, someone outside, fear). Threats and intentions ("he said he'd kill me") always
alarm. Self-harm words, for the person or someone else ("they told him to kill himself"), are a separate
concern with its own reply.

Every phrase is data: `flows/vocab/<locale>/danger.toml`. Text is read in lower case, without
apostrophes, as words; common misspellings of key words are corrected with rapidfuzz first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import OSA

from flows import vocab

_PARTS = re.compile(r"[.!?;,:\n()\"]+|\s-+\s")
_WORD = re.compile(r"[a-z0-9]+")
_ED = re.compile(r"^[a-z]{3,}ed$")


@dataclass(frozen=True, slots=True)
class Concern:
    """What a message suggests: danger now (999), and/or words about self-harm or suicide (Samaritans)."""

    danger: bool = False
    self_harm: bool = False


Words = tuple[str, ...]


def _phrases(items: Iterable[str]) -> frozenset[Words]:
    return frozenset(tuple(item.split()) for item in items)


@dataclass(frozen=True, slots=True)
class _Vocab:
    spelling: Mapping[str, Words]
    fuzzy: frozenset[str]
    fuzzy_keep: frozenset[str]
    always: frozenset[Words]
    harmless: frozenset[Words]
    window: int
    intent: frozenset[Words]
    harm: frozenset[Words]
    reflexive: frozenset[Words]
    returns: frozenset[Words]
    first_person: frozenset[str]
    now: frozenset[Words]
    breaks: frozenset[str]
    present_strong: frozenset[Words]
    past_strong: frozenset[Words]
    present_weak: frozenset[Words]
    past_weak: frozenset[Words]
    weapons: frozenset[Words]
    state_past: frozenset[Words]
    not_past: frozenset[str]
    negation: frozenset[Words]
    self_harm: frozenset[Words]
    self_harm_verbs: frozenset[Words]


@cache
def _vocab(locale: str) -> _Vocab:
    data: Mapping[str, Any] = vocab.table(locale, "danger")
    now, threat = data["now"], data["threat"]
    return _Vocab(
        spelling={k: tuple(v.split()) for k, v in data["spelling"].items()},
        fuzzy=frozenset(data["fuzzy"]["words"]),
        fuzzy_keep=frozenset(data["fuzzy"]["keep"]),
        always=_phrases(data["always"]["phrases"]),
        harmless=_phrases(data["always"]["harmless"]),
        window=int(threat["window"]),
        intent=_phrases(threat["intent"]),
        harm=_phrases(threat["harm"]),
        reflexive=_phrases(threat["reflexive"]),
        returns=_phrases(threat["returns"]),
        first_person=frozenset(threat["first_person"]),
        now=_phrases(now["phrases"]),
        breaks=frozenset(now["breaks"]),
        present_strong=_phrases(now["present_strong"]),
        past_strong=_phrases(now["past_strong"]),
        present_weak=_phrases(now["present_weak"]),
        past_weak=_phrases(now["past_weak"]),
        weapons=_phrases(now["weapons"]),
        state_past=_phrases(now["state_past"]),
        not_past=frozenset(now["not_past"]),
        negation=_phrases(now["negation"]),
        self_harm=_phrases(data["self_harm"]["phrases"]),
        self_harm_verbs=_phrases(data["self_harm"]["verbs"]),
    )


def assess(text: str, locale: str = "en") -> Concern:
    """Read free text for danger now and for self-harm words."""
    if not text or not text.strip():
        return Concern()
    words = _vocab(locale)
    parts = [p for p in (_words(part, words) for part in _PARTS.split(text.lower().replace("’", "'"))) if p]
    whole = tuple(w for p in parts for w in p)
    return Concern(danger=_danger(parts, whole, words), self_harm=_self_harm(whole, words))


def _self_harm(whole: Words, words: _Vocab) -> bool:
    return bool(_find(whole, words.self_harm)) or _reflexive(whole, words)


def _danger(parts: list[Words], whole: Words, words: _Vocab) -> bool:
    if _always(whole, words):
        return True
    return any(_threat(c, words) or _now(c, words) for c in _clauses(parts, words))


def suggests_danger(text: str) -> bool:
    """True when the text sounds like danger now (a weapon, being followed, "help me", "outside my door")."""
    return assess(text).danger


def _words(text: str, words: _Vocab) -> Words:
    out: list[str] = []
    for word in _WORD.findall(text.replace("'", "")):
        out.extend(words.spelling.get(word) or (_corrected(word, words),))
    return tuple(out)


def _closest(word: str, keys: frozenset[str]) -> str:
    """The key word `word` is a misspelling of: one letter wrong or two swapped, two for long words."""
    limit = 2 if len(word) >= 8 else 1
    found = process.extractOne(word, keys, scorer=OSA.distance, score_cutoff=limit)
    return found[0] if found is not None else word


def _corrected(word: str, words: _Vocab) -> str:
    if len(word) < 4 or word in words.fuzzy or word in words.fuzzy_keep:
        return word
    return _closest(word, words.fuzzy)


def _find(words: Words, phrases: frozenset[Words]) -> list[tuple[int, int]]:
    """Where each phrase occurs, as (start, end) word positions."""
    found = []
    lengths = {len(p) for p in phrases}
    for start in range(len(words)):
        for size in lengths:
            if words[start : start + size] in phrases:
                found.append((start, start + size))
    return found


def _covered(spans: Sequence[tuple[int, int]], guard: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans that no harmless phrase overlaps."""
    return [(a, b) for a, b in spans if not any(a < d and c < b for c, d in guard)]


def _always(words: Words, vocab_: _Vocab) -> bool:
    return bool(_covered(_find(words, vocab_.always), _find(words, vocab_.harmless)))


def _clauses(parts: Sequence[Words], words: _Vocab) -> list[Words]:
    out: list[Words] = []
    for part in parts:
        current: list[str] = []
        for word in part:
            if word in words.breaks and current:
                out.append(tuple(current))
                current = []
            else:
                current.append(word)
        if current:
            out.append(tuple(current))
    return out


def _threat(clause: Words, words: _Vocab) -> bool:
    intents = _find(clause, words.intent)
    if not intents:
        return False
    reflexive = {start for start, _ in _find(clause, words.reflexive)}
    for start, end in _covered(_find(clause, words.harm), _find(clause, words.harmless)):
        if end in reflexive:  # "told me to kill myself": self-harm words, not a threat
            continue
        for i_start, i_end in intents:
            if not i_end <= start <= i_end + words.window:
                continue
            ours = clause[i_start] in words.first_person or clause[max(i_start - 1, 0)] in words.first_person
            if not (ours and clause[start:end] in words.returns):  # "I'll be back home at 6"
                return True
    return False


def _markers(clause: Words, words: _Vocab) -> list[tuple[int, int, str]]:
    """Each time word of the clause as (start, end, kind): "present", "past" (clear), "state", "verb"."""
    marks = [(a, b, "present") for a, b in _find(clause, words.present_weak)]
    marks += [(a, b, "past") for a, b in _find(clause, words.past_strong)]
    marks += [(a, b, "state") for a, b in _find(clause, words.state_past)]
    marks += [(a, b, "verb") for a, b in _find(clause, words.past_weak)]
    marks += [(i, i + 1, "verb") for i, w in enumerate(clause) if _ED.match(w) and w not in words.not_past]
    return marks


def _reflexive(words_: Words, words: _Vocab) -> bool:
    """A harm word followed by "myself", "yourself" and the like: "go hang yourself", "hurt himself"."""
    reflexive = {start for start, _ in _find(words_, words.reflexive)}
    return any(end in reflexive for _, end in _find(words_, words.self_harm_verbs))


def _now(clause: Words, words: _Vocab) -> bool:
    """Danger-now words in a part of a sentence that is about now (or says no time at all)."""
    hits = _covered(_find(clause, words.now), _find(clause, words.harmless))
    negations = [end for _, end in _find(clause, words.negation)]
    hits = [(a, b) for a, b in hits if not any(a - 2 <= end <= a for end in negations)]
    if not hits:
        return False
    strong_now = bool(_find(clause, words.present_strong))
    marks = _markers(clause, words)
    return any(_hit_is_now(clause[a:b] in words.weapons, a, b, marks, strong_now) for a, b in hits)


def _hit_is_now(weapon: bool, a: int, b: int, marks: list[tuple[int, int, str]], strong_now: bool) -> bool:
    inside = [kind for start, end, kind in marks if a <= start and end <= b]
    if "present" in inside or strong_now:
        return True
    if inside and not weapon:  # "followed me", "broke in": the danger word is itself in the past
        return False
    # Otherwise the nearest time word decides; "he pulled a knife" says no time, so only a clear past
    # ("had", "was", "last week") silences a weapon.
    near = _nearest(weapon, a, b, marks)
    return near is None or near == "present"


def _nearest(weapon: bool, a: int, b: int, marks: list[tuple[int, int, str]]) -> str | None:
    """The kind of the time word nearest the hit outside it (a weapon ignores "-ed" verbs)."""
    near = [
        (min(abs(start - a), abs(end - b)), kind)
        for start, end, kind in marks
        if (end <= a or start >= b) and not (weapon and kind == "verb")
    ]
    return min(near)[1] if near else None
