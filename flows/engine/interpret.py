"""One small interpreter per kind of question: what one reply means there. No I/O.

Each interpreter gets a `Reply` (the question, its options, what was sent, the draft it may update in
place for multi-select ticks and story parts) and returns an `Outcome`: an answer, stay on the question,
a command, words that join the person's account, or a short hint and the question again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flows import understand as u
from flows.engine.model import Account, Answer, Command, Outcome, Reask, Stay, Step
from flows.types import Draft, FlowContext, Inbound, Option
from flows.words import COMMAND_OPTIONS

_HINTS = {"multi": "hint.multi", "choice": "hint.choice"}
_DESCRIBING_WORDS = 6  # at a question about what happened, a reply this long is also part of the account


@dataclass(slots=True)
class Reply:
    """One reply at one question, with everything an interpreter needs to read it."""

    step: Step
    draft: Draft
    ctx: FlowContext
    options: tuple[Option, ...]
    inbound: Inbound
    keeps_account: bool  # the flow has an account step that words answering nothing can join

    @property
    def text(self) -> str:
        return self.inbound.text or ""

    @property
    def locale(self) -> str:
        return self.draft.locale

    @property
    def keys(self) -> list[str]:
        return [o.key for o in self.options]

    @property
    def hint(self) -> str:
        if self.step.kind == "media":
            return f"{self.step.name}.hint"
        return _HINTS.get(self.step.kind, "hint.text")

    def unplaced(self) -> Outcome:
        """Words that answer nothing here: part of their account if they look like it, else a hint."""
        if self.keeps_account and u.is_account(self.text, self.locale, self.step.account_words):
            return Account(self.text.strip())
        return Reask(self.hint)


def chosen(reply: Reply, key: str) -> Outcome:
    """The outcome of picking option `key`."""
    step, draft = reply.step, reply.draft
    if key in COMMAND_OPTIONS:
        return Command(key)
    if key == "done" and step.kind in ("story", "media"):
        return Answer(draft.answers.get(step.name) or None)
    if step.also is not None and reply.inbound.option is None and reply.text:
        step.also(reply.text, key, draft, reply.ctx)
    if step.store is not None:
        return Answer(step.store(key, draft, reply.ctx))
    return Answer(key)


def _pressed(reply: Reply) -> Outcome:
    key = reply.inbound.option
    if key is None or key not in reply.keys:
        return Reask(reply.hint)
    return chosen(reply, key)


def _skips(reply: Reply) -> bool:
    """ "pass", "rather not say", or "don't know" where the question has no "Not sure"."""
    if not reply.step.skippable:
        return False
    text, locale = reply.text, reply.locale
    if u.refuses(text, locale):
        return True
    return "not_sure" not in reply.keys and u.fold(text) in u.option_words(locale).get("not_sure", ())


# ----- choice ----------------------------------------------------------------------------------------------


def _welcome(reply: Reply) -> Outcome:
    """A question where whatever is typed goes on (the welcome); a story typed there joins the account."""
    text, step = reply.text, reply.step
    kept = reply.keeps_account and u.is_account(text, reply.locale, step.account_words)
    kept = kept and not u.spot(text, u.step_words(reply.locale, step.name))  # "just keep it on record"
    account = text.strip() if kept else None
    outcome = chosen(reply, step.options[0])
    return Answer(outcome.value, account) if isinstance(outcome, Answer) else outcome


def _parsed(reply: Reply) -> Outcome | None:
    """A question that also reads typed text (a date): the value, a hint, or None if not that."""
    if reply.step.parse is None:
        return None
    parsed = reply.step.parse(reply.text, reply.draft, reply.ctx)
    if parsed.error is None:
        return Answer(parsed.value)
    # The first error means "not a date we can read". A long sentence, or words that do not try to answer
    # ("because I am Muslim" at a date), may be part of their account instead: read on (kept, asked again).
    if parsed.error != reply.step.errors[0]:
        return Reask(parsed.error)
    if u.is_account(reply.text, reply.locale, least=6):
        return None
    if not parsed.attempt and u.is_account(reply.text, reply.locale):
        return None
    return Reask(parsed.error)


def _declined(reply: Reply) -> Outcome | None:
    """Words asking for what is not offered here ("the police please" where the report is kept as a
    record): never taken as another option; answered kindly, and the question asked again."""
    declines = reply.step.declines
    found = [k for k in u.spot(reply.text, u.step_words(reply.locale, reply.step.name)) if k in declines]
    return Reask(declines[found[0]]) if found else None


def _understood(reply: Reply) -> Outcome | None:
    """The option a whole reply names, a refusal, or the question's own words inside a sentence."""
    key = u.match_option(reply.text, reply.options, reply.locale, reply.step.name)
    if key is not None:
        return chosen(reply, key)
    declined = _declined(reply)
    if declined is not None:
        return declined
    if _skips(reply):
        return Command("skip")
    spotted = u.spot_one(reply.text, reply.options, reply.locale, reply.step.name)
    if spotted is False:  # words for two different answers: not sure which, so not one of them
        return reply.unplaced()
    if isinstance(spotted, str) and u.opens_against(
        reply.text, spotted, reply.options, reply.locale, reply.step.name
    ):
        return reply.unplaced()  # "no, but my neighbour might know" at "do you know who they are?"
    return _with_details(reply, spotted) if isinstance(spotted, str) else None


def _with_details(reply: Reply, key: str) -> Outcome:
    """An option read from inside a sentence; where the question keeps details ("yes, a lady saw it",
    "no but my neighbour might know"), the words beyond the option are kept with the answer and join
    the person's account: never lost because a yes or no was found in them."""
    if key in u.NEVER_GUESSED:  # "don't send it yet" is not "delete and stop"
        return Reask(reply.hint)
    outcome = chosen(reply, key)
    if not (reply.step.details and isinstance(outcome, Answer) and reply.keeps_account):
        return outcome
    option = next(o for o in reply.options if o.key == key)
    if not u.says_more(reply.text, option, reply.locale, reply.step.name):
        return outcome
    text = reply.text.strip()
    return Answer(outcome.value, account=text, said=text)


def _read_more(reply: Reply) -> Outcome:
    """A typed date where the question reads one, the words a sentence opens with, or the welcome."""
    if reply.step.any_text and reply.step.options:
        return _welcome(reply)
    parsed = _parsed(reply)
    if parsed is not None:
        return parsed
    key = u.opening(reply.text, reply.options, reply.locale)
    return _with_details(reply, key) if key is not None else reply.unplaced()


def read_choice(reply: Reply) -> Outcome:
    """One of several options: number, label, the option's words, a near miss, the question's words."""
    if reply.inbound.option is not None:
        return _pressed(reply)
    found = _understood(reply)
    if found is not None:
        return found
    if not reply.text.strip():
        return Reask(reply.hint)
    return _read_more(reply)


# ----- multi -----------------------------------------------------------------------------------------------


def _items(reply: Reply) -> list[str]:
    return [k for k in reply.keys if k not in ("done", "skip")]


def _toggle(reply: Reply, key: str) -> Outcome:
    step, draft = reply.step, reply.draft
    items = _items(reply)
    selected = [k for k in draft.pending.get("selected", []) if k in items]
    chosen_keys = set(selected) ^ {key}
    if key in chosen_keys and key in step.exclusive:
        chosen_keys = {key}
    elif key in chosen_keys:
        chosen_keys -= set(step.exclusive)
    draft.pending["selected"] = [k for k in items if k in chosen_keys]
    draft.pending["toggled"] = True
    return Stay(update=True)


def _selected(reply: Reply) -> list[str]:
    items = _items(reply)
    return [k for k in reply.draft.pending.get("selected", []) if k in items]


def _finish(reply: Reply, named: Sequence[str]) -> Outcome:
    """End the question with the options named in words, and those ticked on this visit."""
    step = reply.step
    items = _items(reply)
    keys = set(named)
    if step.everything in keys:
        keys = (keys | set(items)) - set(step.exclusive) - {step.everything}
    if reply.draft.pending.get("toggled"):
        keys |= set(_selected(reply))
    exclusive = [k for k in items if k in keys and k in step.exclusive]
    return Answer([k for k in items if k in (set(exclusive[:1]) or keys)] or None)


def _by_name(said: str, reply: Reply) -> list[str]:
    key = u.match_option(said, reply.options, reply.locale)
    if key is not None:
        return [key]
    said_words = set(said.split())  # "race" -> "Race or nationality", "police" -> "Townsville Police"
    found = [o.key for o in reply.options if said_words and said_words <= u.label_words(o.label)]
    if len(found) == 1:
        return found
    key = u.near(said, _phrases(reply), reply.locale)
    return [key] if key is not None else []


def _phrases(reply: Reply) -> dict[str, tuple[str, ...]]:
    """The question's own words, and each option's label, for spotting inside a sentence."""
    phrases = {k: tuple(v) for k, v in u.step_words(reply.locale, reply.step.name).items()}
    for option in reply.options:
        phrases[option.key] = (*phrases.get(option.key, ()), u.fold(option.label))
    return phrases


def _part(part: str, reply: Reply) -> list[str]:
    """The options one part of a reply names ("1 3", "race", "the police"), or [] if none."""
    options = reply.options
    numbers = part.split()
    if numbers and all(n.isdecimal() for n in numbers):
        return [options[int(n) - 1].key for n in numbers if 1 <= int(n) <= len(options)]
    return _by_name(part, reply) or _by_name(u.strip_fillers(part, reply.locale), reply)


def _named(reply: Reply) -> list[str]:
    """Every option a reply names, by number, label or the question's own words."""
    named: list[str] = []
    for part in u.split_many(reply.text, reply.locale):
        named.extend(_part(part, reply))
    wanted = {*_items(reply), *([reply.step.everything] if reply.step.everything else [])}
    named.extend(u.spot(reply.text, _phrases(reply)))
    return [k for k in dict.fromkeys(named) if k in wanted or k in ("done", "skip")]


def _multi_pressed(reply: Reply, key: str) -> Outcome:
    if key == "done":
        return Answer(_selected(reply) or None)
    if key == "skip":
        return Command("skip")
    return _toggle(reply, key) if key in _items(reply) else Reask(reply.hint)


def read_multi(reply: Reply) -> Outcome:
    """Pick all that fit: one number toggles and the question stays; words that name options end it."""
    if reply.inbound.option is not None:
        return _multi_pressed(reply, reply.inbound.option)
    text, said = reply.text, u.fold(reply.text)
    whole = u.match_option(text, reply.options, reply.locale)
    if said.isdecimal():
        return _multi_pressed(reply, whole) if whole is not None else Reask(reply.hint)
    ending = _done_or_skip(reply, whole, said)
    return ending if ending is not None else _in_words(reply, whole)


def _done_or_skip(reply: Reply, whole: str | None, said: str) -> Outcome | None:
    """ "Done" (the ticks so far), or a skip; an option named beats a near-miss refusal ("nie wiem")."""
    if whole == "done" or (whole is None and said in u.option_words(reply.locale).get("done", ())):
        return Answer(_selected(reply) or None)
    if whole == "skip" or (whole is None and _skips(reply)):
        return Command("skip")
    return None


def _describes(reply: Reply) -> bool:
    """A long reply at a question about what happened is also part of their account."""
    step = reply.step
    return reply.keeps_account and step.describes and u.words_in(reply.text) >= _DESCRIBING_WORDS


def _in_words(reply: Reply, whole: str | None) -> Outcome:
    """Words that name options end the question with them; a sentence naming none joins the account."""
    named = [k for k in ([whole] if whole else _named(reply)) if k not in ("done", "skip")]
    if named:
        finished = _finish(reply, named)
        if isinstance(finished, Answer) and _describes(reply):
            finished.account = reply.text.strip()  # "he punched me and called me names": kept too
        return finished
    if reply.keeps_account and u.is_account(reply.text, reply.locale):
        return Answer(_selected(reply) or None, account=reply.text.strip())
    return Reask(reply.hint)


def _with_option(reply: Reply, key: str) -> Reply:
    return Reply(reply.step, reply.draft, reply.ctx, reply.options, Inbound(option=key), reply.keeps_account)


# ----- text ------------------------------------------------------------------------------------------------


def _offered(reply: Reply) -> str | None:
    """An offered option typed exactly: its number, label or own words (no near misses in free text)."""
    said = u.fold(reply.text)
    if said.isdecimal():
        return u.match_option(said, reply.options, reply.locale)
    return _exact(reply)


def _stray_number(text: str) -> bool:
    """ "3" where no option has that number: a button number typed by mistake, not an answer."""
    said = u.fold(text)
    return said.isdecimal() and len(said) <= 2


def read_text(reply: Reply) -> Outcome:
    """Type an answer: an offered option by number or name, a refusal is a skip, else the words."""
    if reply.inbound.option is not None:
        return _pressed(reply)
    text, step = reply.text, reply.step
    key = _offered(reply)
    if key is not None:
        return chosen(reply, key)
    if step.skippable and (u.refuses(text, reply.locale) or u.nothing(text, reply.locale)):
        return Command("skip")
    if not text.strip() or _stray_number(text):
        return Reask(reply.hint)
    if step.parse is not None:
        parsed = step.parse(text, reply.draft, reply.ctx)
        return Reask(parsed.error) if parsed.error is not None else Answer(parsed.value)
    return Answer(text.strip())


def _exact(reply: Reply) -> str | None:
    said = u.fold(reply.text)
    words = u.option_words(reply.locale)
    for option in reply.options:
        if said and said in (u.fold(option.label), u.fold(option.key), *words.get(option.key, ())):
            return option.key
    return None


# ----- story -----------------------------------------------------------------------------------------------


def read_story(reply: Reply) -> Outcome:
    """The person's own words, in as many messages as they like; "no", "that's it", "done" end it."""
    if reply.inbound.option is not None:
        return _pressed(reply)
    text, draft, name = reply.text, reply.draft, reply.step.name
    parts: list[Any] = list(draft.answers.get(name) or [])
    key = _offered(reply)
    if key is not None:
        return chosen(reply, key)
    if u.nothing(text, reply.locale) or _skips(reply):  # "no", "that's it", "I'd rather not say"
        return Answer(parts or None)
    if not text.strip():
        return Reask(reply.hint)
    if draft.pending.pop("replace", False):
        parts = []
    draft.answers[name] = [*parts, text.strip()]
    return Stay()


# ----- media -----------------------------------------------------------------------------------------------


def read_media(reply: Reply) -> Outcome:
    """Photos and files, as many as they like, then Done; "no" means nothing to send."""
    draft, name, inbound = reply.draft, reply.step.name, reply.inbound
    if inbound.media:
        parts = list(draft.answers.get(name) or [])
        parts.extend({"ref": m.ref, "content_type": m.content_type} for m in inbound.media)
        draft.answers[name] = parts
        return Stay()
    if inbound.option is not None:
        return _pressed(reply)
    key = _offered(reply) or u.spot_one(reply.text, reply.options, reply.locale, name)
    if isinstance(key, str):
        return chosen(reply, key)
    if u.nothing(reply.text, reply.locale) or u.refuses(reply.text, reply.locale):
        return Answer(draft.answers.get(name) or None)
    return _about_media(reply)


def _about_media(reply: Reply) -> Outcome:
    """A sentence at the evidence question ("he threw my bag on the floor too") is part of what happened;
    a short one ("I have a video") is about the evidence, and gets the hint on how to send it."""
    if reply.keeps_account and u.is_account(reply.text, reply.locale, least=6):
        return Account(reply.text.strip())
    return Reask(reply.hint)


INTERPRETERS: Mapping[str, Callable[[Reply], Outcome]] = {
    "choice": read_choice,
    "multi": read_multi,
    "text": read_text,
    "story": read_story,
    "media": read_media,
}


def interpret(reply: Reply) -> Outcome:
    """What one reply means at its question."""
    return INTERPRETERS[reply.step.kind](reply)
