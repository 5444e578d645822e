"""Understanding what people type, from the words kept as data in `flows/vocab/<locale>/`. No I/O.

A reply is read in this order: the option's number, its label, the option's own words (`options.toml`),
a near miss of any of those (typo-tolerant matching with rapidfuzz; short words must match exactly, so
"no" never becomes "now"), then the question's own words spotted inside a sentence (`steps.toml`).
Apostrophes, case, punctuation and emoji do not matter: everything is compared after `fold`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import cache, lru_cache

from rapidfuzz import fuzz, process

from flows import vocab
from flows.letters import plain
from flows.types import Option

_NOT_WORD = re.compile(r"[^\w\s]")
_SEPARATORS = re.compile(r"\s*[,;&+/\n]\s*")  # the words that join answers are data: options.toml `_joins`
_FUZZY_MIN = 4  # shorter replies must match exactly: "no" is not "now", "ok" is not "on"
_FUZZY_CUTOFF = 85.0
_SPOT_MOST = 9  # words: a longer reply at a one-answer question is not searched for an answer
_REFUSAL_CUTOFF = 88.0  # a refusal must be very close: a description is never taken for one
# Options that end everything: chosen only by their number, label or own words, never by a near miss or
# from inside a sentence ("don't send it yet" is not "delete and stop").
NEVER_GUESSED = frozenset({"delete", "stop", "exit"})


@lru_cache(maxsize=8192)  # labels and option words are folded again and again: keep them
def fold(text: str) -> str:
    """Lower case, no apostrophes, no punctuation or emoji, single spaces: "I'm OK 🙂!" -> "im ok";
    accents and vowel marks dropped, one form for each letter (`flows.letters.plain`)."""
    text = plain(text).replace("’", "").replace("'", "").replace("`", "")
    text = _NOT_WORD.sub(" ", text).replace("_", " ")
    return " ".join(text.split())


def words_in(text: str) -> int:
    """How many words with letters in them the text has."""
    return sum(1 for word in fold(text).split() if any(ch.isalpha() for ch in word))


@cache
def _folded(locale: str, name: str, section: str | None = None) -> Mapping[str, tuple[str, ...]]:
    table = vocab.table(locale, name)
    if section is not None:
        table = table.get(section, {})
    return {
        key: tuple(dict.fromkeys(fold(str(w)) for w in value))
        for key, value in table.items()
        if isinstance(value, list)
    }


def option_words(locale: str) -> Mapping[str, tuple[str, ...]]:
    """Option key -> the other words for it (folded)."""
    return _folded(locale, "options")


def step_words(locale: str, step: str) -> Mapping[str, tuple[str, ...]]:
    """Option key -> phrases spotted inside a sentence at this question (folded)."""
    return _folded(locale, "steps", step)


@cache
def word_list(locale: str, name: str, key: str) -> frozenset[str]:
    """One list of a vocabulary table, folded, as a set."""
    return frozenset(_folded(locale, name).get(key, ()))


@cache
def greetings(locale: str) -> frozenset[str]:
    return frozenset(fold(str(w)) for w in vocab.table(locale, "greetings").get("words", ()))


@cache
def why_words(locale: str) -> frozenset[str]:
    return frozenset(fold(str(w)) for w in vocab.table(locale, "commands").get("why", {}).get("words", ()))


@cache
def commands(locale: str) -> Mapping[str, str]:
    """A typed word -> the command it means (matched after `words.normalise`, not `fold`: "/start@bot")."""
    found: dict[str, str] = {}
    for name, typed in vocab.table(locale, "commands").get("commands", {}).items():
        for word in typed:
            found[str(word)] = str(name)
    return found


@cache
def language_words() -> frozenset[str]:
    """The word `language` in every language there is: it shows the languages whatever the one in use."""
    found = {
        word for locale in vocab.locales() for word, name in commands(locale).items() if name == "language"
    }
    return frozenset(found)


def is_greeting(text: str, locale: str) -> bool:
    return fold(text) in greetings(locale)


@cache
def _why_starts(locale: str) -> tuple[str, ...]:
    return tuple(fold(str(w)) for w in vocab.table(locale, "commands").get("why", {}).get("starts", ()))


def asks_why(text: str, locale: str) -> bool:
    """ "why?", "what for", "why do you need my name": the person wants to know why a question is asked."""
    said = fold(text)
    if said in why_words(locale):
        return True
    return len(said.split()) <= 10 and any(
        f"{said} ".startswith(f"{start} ") for start in _why_starts(locale)
    )


def _said_or_nearly(said: str, phrases: frozenset[str]) -> bool:
    """Exactly one of the phrases, or (six letters or more) a near miss of one: "i dont no", "rather nto say"."""
    if said in phrases:
        return True
    if len(said) < _FUZZY_MIN + 2:
        return False
    return process.extractOne(said, phrases, scorer=fuzz.ratio, score_cutoff=_REFUSAL_CUTOFF) is not None


def refuses(text: str, locale: str) -> bool:
    """ "pass", "I'd rather not say": a skip at any question."""
    return _said_or_nearly(fold(text), word_list(locale, "refusals", "skip"))


def nothing(text: str, locale: str) -> bool:
    """ "no", "nah", "none", "don't know": nothing to type at a question that asks for words."""
    return _said_or_nearly(fold(text), word_list(locale, "refusals", "nothing"))


def is_account(text: str, locale: str, least: int = 3) -> bool:
    """Whether a reply that answers nothing looks like part of what happened (kept in the account):
    three words or more that are not a greeting or a known short reply. A stray word or two ("banana",
    "maybe later") is asked about again."""
    said = fold(text)
    if words_in(text) < least or said in greetings(locale) or said in why_words(locale):
        return False
    return said not in _known(locale)


@cache
def _known(locale: str) -> frozenset[str]:
    """Every short reply the vocabulary knows (yes, no thanks, not sure, done...): never an account."""
    found = {phrase for phrases in option_words(locale).values() for phrase in phrases}
    found |= word_list(locale, "refusals", "skip") | word_list(locale, "refusals", "nothing")
    return frozenset(found)


# ----- options ---------------------------------------------------------------------------------------------


def _number(said: str, options: Sequence[Option]) -> str | None:
    if said.isdecimal():  # not isdigit: "²" is a digit that int() refuses
        number = int(said)
        return options[number - 1].key if 1 <= number <= len(options) else None
    return None


def _exact(said: str, options: Sequence[Option], locale: str) -> str | None:
    for option in options:
        if said in (fold(option.label), fold(option.key)):
            return option.key
    synonyms = option_words(locale)
    for option in options:
        if said in synonyms.get(option.key, ()):
            return option.key
    return None


def _near_enough(said: str, phrase: str, locale: str) -> bool:
    """Whether a near miss of `phrase` may stand for it: long enough, and turned round by the same words
    (options.toml `_negations`): "it hasnt happened before" is no slip of "it happened before"."""
    if len(phrase) < _FUZZY_MIN:
        return False
    nots = word_list(locale, "options", "_negations")
    return nots.isdisjoint(said.split()) == nots.isdisjoint(phrase.split())


def _fuzzy(said: str, options: Sequence[Option], locale: str) -> str | None:
    if len(said) < _FUZZY_MIN:
        return None
    synonyms = option_words(locale)
    phrases: dict[str, set[str]] = {}
    for option in options:
        for phrase in (fold(option.label), *synonyms.get(option.key, ())):
            if _near_enough(said, phrase, locale):
                phrases.setdefault(phrase, set()).add(option.key)
    found = process.extract(said, list(phrases), scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF, limit=5)
    if not found:
        return None
    best = found[0][1]
    keys = {key for phrase, score, _ in found if score >= best - 2 for key in phrases[phrase]}
    return keys.pop() if len(keys) == 1 else None


def _this_question(said: str, options: Sequence[Option], locale: str, step: str | None) -> str | None:
    """A whole reply that is one of this question's own phrases: more specific than an option's usual
    words ("ok" at the safety check means "I'm ok", not "yes")."""
    if step is None:
        return None
    keys = {o.key for o in options}
    found = [key for key, phrases in step_words(locale, step).items() if key in keys and said in phrases]
    return found[0] if len(found) == 1 else None


def match_option(text: str, options: Sequence[Option], locale: str, step: str | None = None) -> str | None:
    """The one option a whole reply means: number, label, this question's words, the option's own words,
    or a near miss."""
    said = fold(text)
    if not said:
        return None
    found = (
        _number(said, options) or _this_question(said, options, locale, step) or _exact(said, options, locale)
    )
    if found is not None:
        return found
    near = _fuzzy(said, options, locale)
    return near if near not in NEVER_GUESSED else None


def _spans(said: str, phrases: Mapping[str, Iterable[str]]) -> list[tuple[int, int, str]]:
    """Every (start, end, key) where a key's phrase appears as whole words in `said` (padded)."""
    spans: list[tuple[int, int, str]] = []
    for key, words in phrases.items():
        for phrase in filter(None, words):
            start = said.find(f" {phrase} ")
            while start >= 0:
                spans.append((start, start + len(phrase) + 2, key))
                start = said.find(f" {phrase} ", start + 1)
    return spans


def spot(text: str, phrases: Mapping[str, Iterable[str]]) -> list[str]:
    """The keys whose phrases appear as whole words in the text; a phrase found inside a longer one
    found for another key ("hurt" inside "not hurt") does not count."""
    spans = _spans(f" {fold(text)} ", phrases)
    kept: list[str] = []
    for start, end, key in spans:
        inside = any(s <= start and end <= e and (e - s) > (end - start) and k != key for s, e, k in spans)
        if not inside and key not in kept:
            kept.append(key)
    return kept


def _opening(text: str, options: Sequence[Option], locale: str) -> str | None:
    """The option named by the words a sentence opens with: "nope, I'm ok now", "yes it was yesterday"."""
    head = fold(re.split(r"[,.!?;:\n-]", text.strip(), maxsplit=1)[0])
    words = head.split()
    longer: set[str] = set()  # what the longer openings mean, where the vocabulary knows them
    nots = word_list(locale, "options", "_negations")
    for size in (len(words), 2, 1):
        if size < len(words) and words[size] in nots:
            return None  # "it has not happened before" does not open with "it has"
        candidate = " ".join(words[:size])
        key = _exact(candidate, options, locale) if candidate else None
        if key is not None:
            # "no idea who" at a question with no "not sure": its "no" is not the answer "no".
            return None if longer and not longer & meanings(candidate, locale) else key
        longer |= meanings(candidate, locale)
    return None


def meanings(phrase: str, locale: str) -> frozenset[str]:
    """The option keys a folded phrase is a word for in the vocabulary ("no idea" -> not_sure)."""
    return _meaning_of(locale).get(phrase, frozenset())


@cache
def _meaning_of(locale: str) -> Mapping[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for key, phrases in option_words(locale).items():
        for phrase in phrases:
            found.setdefault(phrase, set()).add(key)
    return {phrase: frozenset(keys) for phrase, keys in found.items()}


def spot_one(text: str, options: Sequence[Option], locale: str, step: str) -> str | bool | None:
    """The one option the question's own words point to inside a sentence; False when they point to
    several (we are not sure), None when they point to none."""
    keys = {o.key for o in options}
    if words_in(text) > _SPOT_MOST:
        return None  # a long sentence at a question with options is their account, not a guess
    found = [k for k in spot(text, step_words(locale, step)) if k in keys]
    if found:
        return found[0] if len(found) == 1 else False
    return None


_DETAIL_WORDS = 3  # a reply this long or longer may say more than the option it names


def says_more(text: str, option: Option, locale: str, step: str) -> bool:
    """Whether a reply that names `option` inside a sentence says more than that: words that are not the
    option's label nor small words that say nothing (options.toml `_empty`): "yes, a lady saw it",
    "no but my neighbour might know", "yes, twice before" ("twice" means "before", and says how often);
    not "yes it did", "no I don't think so", or the question's own longer phrases ("no one saw it")."""
    if words_in(text) < _DETAIL_WORDS:
        return False
    phrases = step_words(locale, step).get(option.key, ())
    own = {fold(option.label), fold(option.key), *(p for p in phrases if " " in p)}
    said, before = f" {fold(text)} ", ""
    while said != before:  # "people on the bus saw": "on the bus" out, then "people saw"
        before = said
        for phrase in sorted(filter(None, own), key=lambda p: (-len(p), p)):
            said = said.replace(f" {phrase} ", " ")
    empty = word_list(locale, "options", "_empty")
    return any(word not in empty for word in said.split())


def opens_against(text: str, key: str, options: Sequence[Option], locale: str, step: str) -> bool:
    """Whether a short sentence opens with another option than the one its words point to: "no, but my
    neighbour might know" opens with No, and "my neighbour" means Yes at "do you know who they are?".
    Not when the words found open the sentence themselves ("no idea who he was")."""
    opened = opening(text, options, locale)
    if opened is None or opened == key:
        return False
    said = f"{fold(text)} "
    return not any(said.startswith(f"{phrase} ") for phrase in step_words(locale, step).get(key, ()))


def opening(text: str, options: Sequence[Option], locale: str) -> str | None:
    """The option named by the words a short sentence opens with: "nope, I'm ok now", "yes it was"."""
    return _opening(text, options, locale) if words_in(text) <= _SPOT_MOST else None


def near(said: str, phrases: Mapping[str, Iterable[str]], locale: str) -> str | None:
    """The one key whose phrase is a near miss of the whole of `said` ("relgion" -> religion)."""
    if len(said) < _FUZZY_MIN + 1:
        return None
    owners: dict[str, set[str]] = {}
    for key, words in phrases.items():
        for phrase in words:
            if _near_enough(said, phrase, locale):
                owners.setdefault(phrase, set()).add(key)
    found = process.extract(said, list(owners), scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF, limit=5)
    keys = {key for phrase, score, _ in found if score >= found[0][1] - 2 for key in owners[phrase]}
    return keys.pop() if len(keys) == 1 else None


def split_many(text: str, locale: str) -> list[str]:
    """ "race and religion", "1, 3", "police & council" -> the parts, folded, empty ones left out."""
    joins = word_list(locale, "options", "_joins")
    parts = []
    for piece in _SEPARATORS.split(text):
        words: list[str] = []
        for word in fold(piece).split():
            if word in joins:
                parts.append(" ".join(words))
                words = []
            else:
                words.append(word)
        parts.append(" ".join(words))
    return [p for p in parts if p]


def strip_fillers(said: str, locale: str) -> str:
    """ "only the police" -> "police": small words that name nothing."""
    fillers = word_list(locale, "options", "_fillers")
    return " ".join(w for w in said.split() if w not in fillers)


def label_words(label: str) -> frozenset[str]:
    return frozenset(fold(label).split())


def section_words(locale: str, name: str, section: str) -> Mapping[str, tuple[str, ...]]:
    """Key -> phrases (folded) of one section of a vocabulary table (`support.toml` [about])."""
    return _folded(locale, name, section)


@cache
def _again_phrases(locale: str) -> tuple[str, ...]:
    table = vocab.table(locale, "series")
    return tuple(fold(str(p)) for p in table.get("again", {}).get("phrases", ()))


def says_again(text: str, locale: str) -> bool:
    """ "it's the same man again", "I reported him last month": about something reported before."""
    said = f" {fold(text)} "
    return any(f" {phrase} " in said for phrase in _again_phrases(locale))
