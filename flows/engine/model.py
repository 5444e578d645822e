"""The pieces a flow is declared with (steps, transitions, conditions) and what an interpreter returns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from transitions import EventData

from flows.types import Draft, FlowContext

START = "start"  # the state of a conversation that has not been shown anything yet
SAID = "said"  # the answers entry: step -> the person's words said with the option they picked
Kind = Literal["choice", "multi", "text", "story", "media"]
Say = Callable[..., str]


class Turn:
    """The throw-away model the shared machine drives during one step."""

    def __init__(self, draft: Draft, ctx: FlowContext) -> None:
        self.draft = draft
        self._ctx = ctx
        self._localized = ("", ctx)  # (locale, the context in it): made once a step, not at each use
        self.value: Any = None
        self.state = ""

    @property
    def ctx(self) -> FlowContext:
        """The step's context, with the deployment's own words (operator, partners, support services) in
        the conversation's language where config gives them in it (the language may change mid-step)."""
        locale, ctx = self._localized
        if locale != self.draft.locale:
            ctx = self._ctx.in_language(self.draft.locale)
            self._localized = (self.draft.locale, ctx)
        return ctx


class When:
    """A named condition on the answer just given; the name labels the edge in the diagram."""

    def __init__(self, name: str, test: Callable[[Any, FlowContext], bool]) -> None:
        self.__name__ = name
        self.test = test

    def __call__(self, event: EventData) -> bool:
        turn = event.model
        assert isinstance(turn, Turn)
        return self.test(turn.value, turn.ctx)


class Given(When):
    """A condition: an earlier step already has an answer (given there, or read from other words)."""

    def __init__(self, step: str) -> None:
        super().__init__(f"{step}_given", lambda _value, _ctx: False)
        self.step = step

    def __call__(self, event: EventData) -> bool:
        turn = event.model
        assert isinstance(turn, Turn)
        return turn.draft.answers.get(self.step) is not None


class Earlier(When):
    """A condition on an answer given at an earlier step (for example the role), not the one just given."""

    def __init__(self, step: str, *keys: str) -> None:
        super().__init__(f"{step}_is_" + "_or_".join(keys), lambda _value, _ctx: False)
        self.step, self.keys = step, keys

    def __call__(self, event: EventData) -> bool:
        turn = event.model
        assert isinstance(turn, Turn)
        return choice_of(turn.draft.answers.get(self.step)) in self.keys


class Told(When):
    """The answer is `key` and the person has already written something at step `step` (their account)."""

    def __init__(self, key: str, step: str) -> None:
        super().__init__(f"is_{key}_with_{step}_written", lambda _value, _ctx: False)
        self.key, self.step = key, step

    def __call__(self, event: EventData) -> bool:
        turn = event.model
        assert isinstance(turn, Turn)
        return choice_of(turn.value) == self.key and bool(turn.draft.answers.get(self.step))


def choice_of(value: Any) -> Any:
    """The option key inside an answer (answers may be a key or a dict with a "choice")."""
    return value.get("choice") if isinstance(value, dict) else value


def answer_is(*keys: str) -> When:
    """A condition: the answer is (or its choice is) one of `keys`."""
    return When("is_" + "_or_".join(keys), lambda value, _ctx: choice_of(value) in keys)


@dataclass(frozen=True, slots=True)
class Go:
    """One declared transition: go to `dest` when `when` holds (None: always; the last one of a step)."""

    dest: str
    when: When | None = None


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a step's parser made of free text: a value, or the catalog key of a short error hint; with
    `attempt=False`, words that do not even try to answer (no date in them at a date question): the engine
    may keep them with the person's account instead of hinting."""

    value: Any = None
    error: str | None = None
    attempt: bool = True


Parser = Callable[[str, Draft, FlowContext], Parsed]
Fields = Callable[[Draft, FlowContext, Say], Mapping[str, object]]
DynamicOptions = Callable[[Draft, FlowContext], Sequence[tuple[str, str | None]]]
# Words that chose an option may say more (a safe time in "phone me after 6"): (text, key, draft, ctx).
Also = Callable[[str, str, Draft, FlowContext], None]


@dataclass(frozen=True)
class Step:
    """One question of a flow, declared as data: how to ask, how to validate, where to go next."""

    name: str
    kind: Kind = "choice"
    options: tuple[str, ...] = ()  # option keys, labels at `option.<key>` in the catalog
    go: tuple[Go, ...] = ()
    parse: Parser | None = None  # free text -> value or error key (tried after the options)
    errors: tuple[str, ...] = ()  # every catalog key `parse` may return
    skippable: bool = True
    location: bool = False  # accepts a shared location and offers the button
    group: str | None = None  # steps changed together from the review
    in_history: bool = True  # `back` may return here
    returns: bool = False  # after the answer, go back to where the person was (999, resume)
    notes: Mapping[str, str] = field(default_factory=dict)  # answer key -> catalog key sent after it
    store: Callable[[Any, Draft, FlowContext], Any] | None = None  # chosen option -> stored answer
    exclusive: tuple[str, ...] = ()  # multi: keys that cannot be picked with others
    everything: str | None = None  # multi: a key people may say ("both", "all of them") meaning all items
    dynamic_options: DynamicOptions | None = None  # options from config: (key, label or None)
    also: Also | None = None  # an option understood from typed words: read more from the same words
    skip_as: str | None = None  # "skip" here means choosing this option (contact: don't contact me)
    ask_key: Callable[[Draft, FlowContext], str] | None = None
    fields: Fields | None = None  # placeholders for the question
    keys: tuple[str, ...] = ()  # further catalog keys this step uses (ask variants, summary lines)
    offer_skip: bool = True
    any_text: bool = False  # any typed text that is not a command picks the first option ("hi" at welcome)
    brief: bool = False  # a long question: re-ask with the short `<name>.again` instead of all of it again
    account_words: int = 3  # words a reply that answers nothing needs to join the person's account
    describes: bool = False  # a long reply here also tells what happened: kept in the account as well
    # Words asking for what this question cannot give ("the police please" where there is no police to
    # choose): key of this question's words in steps.toml -> the catalog key of the kind answer.
    declines: Mapping[str, str] = field(default_factory=dict)
    details: bool = False  # "yes, a lady saw it": words said with the option are kept with the answer


# ----- what an interpreter makes of one reply --------------------------------------------------------------


@dataclass(slots=True)
class Answer:
    """The question is answered with `value`; `account` is text that also joins the person's account;
    `said` is the person's words when they said more than the option (kept with the answer, `SAID`)."""

    value: Any
    account: str | None = None
    said: str | None = None


@dataclass(slots=True)
class Reask:
    """Not understood: say the short hint at catalog key `hint`, then ask again."""

    hint: str


@dataclass(slots=True)
class Stay:
    """Understood, and the question stays open (a tick at a multi-select, one more part of the story)."""

    update: bool = False


@dataclass(slots=True)
class Command:
    """The reply means one of the words that work anywhere (skip, back, ...)."""

    name: str


@dataclass(slots=True)
class Account:
    """Words that answer nothing here: they join the person's account, and the question is asked again."""

    text: str


Outcome = Answer | Reask | Stay | Command | Account
