"""A generic engine that runs any conversation flow declared as data. No I/O.

A flow is a list of `Step`s. Each step has the same small shape (as in Home Assistant's config flows):
*ask* (render the question from the catalog), *validate* (turn what was sent into an answer, or an error key),
*advance* (conditional transitions declared as data). All flows run on ONE shared `transitions.Machine` per
flow, built at import with `model=None`; each call to `Flow.step` puts a throw-away model at the saved step
(`Machine.set_state`) and fires the machine's events on it (`Event.trigger(model)`). The model is never added
to the machine: `add_model` would bind a convenience method per state and trigger to it, which cost half of
the step, and the engine calls none of them (a Machine per conversation costs about 12 times more, and models
left behind in a machine leak memory).

Besides the declared `advance` transitions, the engine moves between steps only through the machine's own
`to_<step>` triggers: for `back`, `999`, "continue where I was" and "change an answer" from the review.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from transitions import EventData, Machine
from transitions.extensions import GraphMachine

from flows import catalog, references, words
from flows.danger import Concern
from flows.types import Draft, FlowContext, Inbound, Option, Outbound, ReportFields, StatusInfo, StepResult

START = "start"  # the state of a conversation that has not been shown anything yet
Kind = Literal["choice", "multi", "text", "story", "media"]
Say = Callable[..., str]

# Keys the engine itself uses, whatever the flow.
ENGINE_KEYS = (
    "help.text",
    "alarm.text",
    "alarm.safe",
    "alarm.self_harm",
    "stop.text",
    "delete.text",
    "exit.cleared",
    "exit.manual",
    "back.first",
    "skip.not_allowed",
    "media.declined",
    "location.declined",
    "unsupported.text",
    "edited.text",
    "hint.choice",
    "hint.multi",
    "hint.text",
    "hint.help",
    "status.found",
    "status.reply",
    "status.not_found",
    "status.bad",
    "status.how",
    "status.how_to_start",
    "status.code_hint",
    "status.wait",
    "status.state.new",
    "status.state.in-progress",
    "status.state.closed",
    "option.skip",
    "option.done",
)
_HISTORY_LIMIT = 200
_NUMBERS = re.compile(r"^\d+(?:\s+\d+)*$")
_SEPARATORS = re.compile(r"\s*(?:,|;|&|\+|\band\b)\s*")


class When:
    """A named condition on the answer just given; the name labels the edge in the diagram."""

    def __init__(self, name: str, test: Callable[[Any, FlowContext], bool]) -> None:
        self.__name__ = name
        self.test = test

    def __call__(self, event: EventData) -> bool:
        turn = event.model
        assert isinstance(turn, _Turn)
        return self.test(turn.value, turn.ctx)


class Earlier(When):
    """A condition on an answer given at an earlier step (for example the role), not the one just given."""

    def __init__(self, step: str, *keys: str) -> None:
        super().__init__(f"{step}_is_" + "_or_".join(keys), lambda _value, _ctx: False)
        self.step, self.keys = step, keys

    def __call__(self, event: EventData) -> bool:
        turn = event.model
        assert isinstance(turn, _Turn)
        return choice_of(turn.draft.answers.get(self.step)) in self.keys


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
    """What a step's parser made of free text: a value, or the catalog key of a short error hint."""

    value: Any = None
    error: str | None = None


Parser = Callable[[str, Draft, FlowContext], Parsed]
Fields = Callable[[Draft, FlowContext, Say], Mapping[str, object]]
DynamicOptions = Callable[[FlowContext], Sequence[tuple[str, str | None]]]


@dataclass(frozen=True)
class Step:
    """One question of a flow, declared as data: how to ask, how to validate, where to go next."""

    name: str
    kind: Kind = "choice"
    options: tuple[str, ...] = ()  # option keys, labels at `option.<key>` in the catalog
    go: tuple[Go, ...] = ()
    parse: Parser | None = None  # free text -> value or error key
    errors: tuple[str, ...] = ()  # every catalog key `parse` may return
    skippable: bool = True
    location: bool = False  # accepts a shared location and offers the button
    group: str | None = None  # steps changed together from the review
    in_history: bool = True  # `back` may return here
    returns: bool = False  # after the answer, go back to where the person was (999, resume)
    notes: Mapping[str, str] = field(default_factory=dict)  # answer key -> catalog key sent after it
    store: Callable[[Any, Draft, FlowContext], Any] | None = None  # chosen option -> stored answer
    exclusive: tuple[str, ...] = ()  # multi: keys that cannot be picked with others
    dynamic_options: DynamicOptions | None = None  # options from config: (key, label or None)
    ask_key: Callable[[Draft, FlowContext], str] | None = None
    fields: Fields | None = None  # placeholders for the question
    keys: tuple[str, ...] = ()  # further catalog keys this step uses (ask variants, summary lines)
    offer_skip: bool = True
    any_text: bool = False  # any typed text that is not a command picks the first option ("hi" at welcome)
    brief: bool = False  # a long question: re-ask with the short `<name>.again` instead of all of it again


class _Turn:
    """The throw-away model the shared machine drives during one step."""

    def __init__(self, draft: Draft, ctx: FlowContext) -> None:
        self.draft = draft
        self.ctx = ctx
        self.value: Any = None
        self.state = ""


class _Diagram:
    """The model GraphMachine draws (it needs one to attach `get_graph`)."""

    state = START


@dataclass(slots=True)
class _Answer:
    value: Any


@dataclass(slots=True)
class _Reask:
    hint: str


@dataclass(slots=True)
class _Stay:
    update: bool = False


@dataclass(slots=True)
class _Command:
    name: str


_Outcome = _Answer | _Reask | _Stay | _Command


class Flow:
    """A conversation flow declared as data, run on one shared `transitions` machine.

    `step(draft, inbound, ctx)` is the only entry point that changes anything: it never mutates its input,
    performs no I/O, and returns the new draft, the replies, and what the service must do (submit a report,
    erase the conversation, look up a status). `status_reply` renders the answer to a status look-up, and
    `mermaid` draws the machine the engine runs.
    """

    def __init__(
        self,
        *,
        name: str,
        steps: Sequence[Step],
        first: str,
        emergency: str,
        resume: str,
        review: str,
        change: str,
        final: str,
        submit: Callable[[Draft, FlowContext], ReportFields],
        finish: Callable[[Draft, FlowContext, Say], list[str]],
        alarm: Callable[[str, str], Concern],
        keys: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.steps: dict[str, Step] = {step.name: step for step in steps}
        self.first, self.emergency, self.resume = first, emergency, resume
        self.review, self.change, self.final = review, change, final
        self._submit, self._finish, self._alarm = submit, finish, alarm
        self._keys = frozenset((*ENGINE_KEYS, *keys, *self._step_keys()))
        self.states: tuple[str, ...] = (START, *self.steps, final)
        self.transitions: tuple[dict[str, Any], ...] = self._declare()
        self.machine = Machine(model=None, **self._machine_args())
        self._diagram: str | None = None

    # ----- declaration ---------------------------------------------------------------------------------

    def _declare(self) -> tuple[dict[str, Any], ...]:
        declared: list[dict[str, Any]] = [{"trigger": "advance", "source": START, "dest": self.first}]
        for step in self.steps.values():
            if not step.go or step.go[-1].when is not None:
                raise ValueError(f"step {step.name!r} needs an unconditional last transition")
            for go in step.go:
                if go.dest not in self.steps and go.dest != self.final:
                    raise ValueError(f"step {step.name!r} goes to unknown step {go.dest!r}")
                edge: dict[str, Any] = {"trigger": "advance", "source": step.name, "dest": go.dest}
                if go.when is not None:
                    edge["conditions"] = [go.when]
                declared.append(edge)
        return tuple(declared)

    def _machine_args(self) -> dict[str, Any]:
        return {
            "states": list(self.states),
            "transitions": [dict(edge) for edge in self.transitions],
            "initial": START,
            "auto_transitions": True,  # `to_<step>` triggers for back / 999 / change; hidden in the diagram
            "send_event": True,
            "ignore_invalid_triggers": False,
        }

    def _step_keys(self) -> set[str]:
        keys: set[str] = set()
        for step in self.steps.values():
            if step.ask_key is None:
                keys.add(f"{step.name}.ask")
            if step.kind in ("story", "media"):
                keys.add(f"{step.name}.more")
            if step.kind == "media":
                keys.add(f"{step.name}.hint")
            if step.brief:
                keys.add(f"{step.name}.again")
            keys.update(f"option.{key}" for key in step.options)
            keys.update(step.errors)
            keys.update(step.notes.values())
            keys.update(step.keys)
        return keys

    def message_keys(self) -> frozenset[str]:
        """Every catalog key this flow and the engine can use."""
        return self._keys

    def mermaid(self) -> str:
        """The flow as a Mermaid state diagram, drawn by transitions from the definitions the engine runs."""
        if self._diagram is None:
            model = _Diagram()
            GraphMachine(
                model=model,
                graph_engine="mermaid",
                show_conditions=True,
                title=self.name,
                **self._machine_args(),
            )
            self._diagram = str(model.get_graph().draw(None))  # type: ignore[attr-defined]
        return self._diagram

    # ----- the step --------------------------------------------------------------------------------------

    def step(self, draft: Draft | None, inbound: Inbound, ctx: FlowContext) -> StepResult:
        """Handle one inbound message: the new draft, the replies, and what the service must do."""
        work = draft.copy() if draft is not None else Draft(step=START)
        if work.step == self.final or work.step not in self.states:
            work = Draft(
                step=START, locale=work.locale, answers=work.answers if work.step != self.final else {}
            )
        turn = _Turn(work, ctx)
        self.machine.set_state(work.step, model=turn)  # not add_model: see the module's docstring
        result = self._handle(turn, inbound)
        result.draft.last_active = ctx.now.isoformat()
        return result

    def status_reply(
        self, draft: Draft | None, info: StatusInfo | None, ctx: FlowContext, *, wait: bool = False
    ) -> list[Outbound]:
        """The answer to `status <reference>` (or "wait": too many look-ups failed), then the current
        question again (or how to start)."""
        locale = draft.locale if draft is not None else catalog.DEFAULT_LOCALE
        say = self._say(locale)
        if wait:
            replies = [Outbound(text=say("status.wait"), step="status")]
        elif info is None:
            replies = [Outbound(text=say("status.not_found"), step="status")]
        else:
            text = say(
                "status.found",
                reference=info.reference,
                state=say(f"status.state.{info.status}")
                if f"status.state.{info.status}" in self._keys
                else info.status,
                submitted_on=info.submitted_on.strftime("%d/%m/%Y"),
            )
            lines = [text, *(say("status.reply", reply=reply) for reply in info.replies)]
            if info.withheld:
                lines.append(say("status.code_hint"))
            replies = [Outbound(text="\n\n".join(lines), step="status")]
        if draft is None or draft.step in (START, self.final) or draft.step not in self.steps:
            replies.append(Outbound(text=say("status.how_to_start"), step="status"))
        else:
            replies.append(self._ask(draft, ctx))
        return replies

    def is_question(self, message: Outbound) -> bool:
        """Whether a reply asks something the person can answer (a step of this flow)."""
        step = self.steps.get(message.step)
        if step is None:
            return False
        return bool(message.options) or step.kind in ("text", "story")

    # ----- internals -----------------------------------------------------------------------------------

    def _say(self, locale: str) -> Say:
        keys = self._keys

        def say(key: str, **fields: object) -> str:
            if key not in keys:
                raise LookupError(f"catalog key {key!r} is used but not declared by the flow")
            return catalog.text(locale, key, **fields)

        return say

    def _handle(self, turn: _Turn, inbound: Inbound) -> StepResult:
        draft, ctx = turn.draft, turn.ctx
        say = self._say(draft.locale)
        replies: list[Outbound] = []
        text = inbound.text or ""
        plain = not inbound.media and inbound.location is None and inbound.unsupported is None

        # Right after a danger reminder ("we can go on when you are ready"), "I'm safe now" answers the
        # reminder, not the question: it is thanked and the question asked again, and it joins no answer.
        reminded = bool(draft.pending.pop("reminded", False))
        cmd: str | None = None
        if inbound.option is not None and inbound.option in words.COMMAND_OPTIONS:
            cmd = inbound.option
        elif plain and inbound.option is None and text and not inbound.edited:
            asked, reference = references.status_request(text)
            if asked:
                if reference is None:
                    key = "status.how" if words.normalise(text) == "status" else "status.bad"
                    replies.append(Outbound(text=say(key), step="status"))
                    return self._reask(turn, replies, hint=None)
                code = references.status_code(text)
                return StepResult(draft=draft, replies=[], status_query=reference, status_code=code)
            cmd = words.command(text)
        if cmd is not None:
            return self._command(turn, cmd, replies)

        if reminded and plain and inbound.option is None and words.normalise(text) in words.ALIASES["safe"]:
            replies.append(Outbound(text=say("alarm.safe"), step="alarm"))
            return self._reask(turn, replies, hint=None)
        concern = self._alarm(text, draft.locale) if text and draft.step != self.emergency else Concern()
        if concern.danger:
            replies.append(Outbound(text=say("alarm.text"), step="alarm"))
            draft.pending["reminded"] = True
        if concern.self_harm:  # Samaritans and Childline, calmly; then the conversation goes on
            replies.append(Outbound(text=say("alarm.self_harm"), step="alarm"))
        if inbound.edited:
            replies.append(Outbound(text=say("edited.text"), step="edited"))
            return self._reask(turn, replies, hint=None)
        if draft.step == START:
            self._move(turn, self.first, push=False)
            return self._asked(turn, replies)
        if self._idle(draft, ctx):
            return self._offer_resume(turn, replies)
        if inbound.unsupported is not None:
            replies.append(Outbound(text=say("unsupported.text"), step="unsupported"))
            return self._reask(turn, replies, hint=None)

        step = self.steps[draft.step]
        if inbound.media and step.kind != "media":
            replies.append(Outbound(text=say("media.declined"), step="media"))
            if not text.strip():
                return self._reask(turn, replies, hint=None)
            inbound = Inbound(text=text)
        if inbound.location is not None and not step.location:
            replies.append(Outbound(text=say("location.declined"), step="location"))
            return self._reask(turn, replies, hint=None)

        outcome = self._validate(turn, step, inbound)
        if isinstance(outcome, _Reask):
            return self._reask(turn, replies, hint=outcome.hint)
        if isinstance(outcome, _Command):
            return self._command(turn, outcome.name, replies)
        if isinstance(outcome, _Stay):
            draft.reasked = 0
            replies.append(self._ask(draft, ctx, update=outcome.update))
            return StepResult(draft=draft, replies=replies)
        return self._complete(turn, outcome.value, replies)

    def _command(self, turn: _Turn, cmd: str, replies: list[Outbound]) -> StepResult:
        draft, ctx = turn.draft, turn.ctx
        say = self._say(draft.locale)
        if cmd in ("stop", "delete", "exit"):
            fresh = Draft(step=START, locale=draft.locale)
            if cmd == "exit":
                key = "exit.cleared" if ctx.can_clear_chat else "exit.manual"
                out = Outbound(text=say(key), clear_chat=True, step="exit")
            else:
                out = Outbound(text=say(f"{cmd}.text"), step=cmd)
            return StepResult(draft=fresh, replies=[out], erase=True)
        if cmd == "help":
            replies.append(Outbound(text=say("help.text"), step="help"))
            return self._reask(turn, replies, hint=None, count=False)
        if cmd == "999":
            if draft.step != self.emergency:
                back_to = draft.step
                if draft.step == START:
                    back_to = self.first
                elif draft.step == self.resume:
                    back_to = str(draft.pending.get("resume_to", self.first))
                self._move(turn, self.emergency, push=draft.step != START)
                draft.pending["return_to"] = back_to
            return self._asked(turn, replies)
        if cmd == "start":
            if draft.step == START or (draft.step == self.first and not draft.answers):
                self._move(turn, self.first, push=False)
                return self._asked(turn, replies)
            return self._offer_resume(turn, replies)
        if draft.step == START:  # back / skip before anything was asked
            self._move(turn, self.first, push=False)
            return self._asked(turn, replies)
        if cmd == "back":
            while draft.history:
                target = draft.history.pop()
                if target in self.steps:
                    self._move(turn, target, push=False)
                    return self._asked(turn, replies)
            replies.append(Outbound(text=say("back.first"), step="back"))
            return self._reask(turn, replies, hint=None, count=False)
        # skip
        step = self.steps[draft.step]
        if not step.skippable:
            return self._reask(turn, replies, hint="skip.not_allowed")
        value: Any = None
        if step.kind in ("story", "media"):  # keep what was already sent
            value = draft.answers.get(step.name) or None
        elif step.kind == "multi":
            value = None
        return self._complete(turn, value, replies)

    def _offer_resume(self, turn: _Turn, replies: list[Outbound]) -> StepResult:
        draft = turn.draft
        if draft.step != self.resume:
            resume_to = draft.step
            if draft.step == self.emergency and "return_to" in draft.pending:
                resume_to = str(draft.pending["return_to"])
            self._move(turn, self.resume, push=False)
            draft.pending["resume_to"] = resume_to
        return self._asked(turn, replies)

    def _idle(self, draft: Draft, ctx: FlowContext) -> bool:
        if draft.last_active is None or draft.step in (START, self.first, self.resume, self.final):
            return False
        try:
            last = datetime.fromisoformat(draft.last_active)
            return ctx.now - last > timedelta(minutes=ctx.settings.resume_after_minutes)
        except (ValueError, TypeError):
            return False

    # ----- validate --------------------------------------------------------------------------------------

    def _options(self, step: Step, draft: Draft, ctx: FlowContext) -> tuple[Option, ...]:
        say = self._say(draft.locale)
        pairs: list[tuple[str, str]] = []
        if step.dynamic_options is not None:
            for key, label in step.dynamic_options(ctx):
                pairs.append((key, label if label is not None else say(f"option.{key}")))
        else:
            pairs.extend((key, say(f"option.{key}")) for key in step.options)
        if step.kind in ("multi", "story", "media"):
            pairs.append(("done", say("option.done")))
        if step.skippable and step.offer_skip:
            pairs.append(("skip", say("option.skip")))
        return tuple(Option(key=key, label=label) for key, label in pairs)

    def _match_one(self, text: str, options: Sequence[Option], loose: bool) -> str | None:
        said = words.normalise(text)
        if not said:
            return None
        if said.isdecimal():  # not isdigit: "²" is a digit that int() refuses
            number = int(said)
            return options[number - 1].key if 1 <= number <= len(options) else None
        for option in options:
            if said in (words.normalise(option.label), option.key.replace("_", " "), option.key):
                return option.key
        for option in options:
            if said in words.ALIASES.get(option.key, ()):
                return option.key
        if loose and len(said) >= 4:  # "phone" -> "By phone or email", "verbal" -> "Verbal abuse or threats"
            said_words = set(said.split())
            found = [
                o.key
                for o in options
                if words.normalise(o.label).startswith(said)
                or said_words <= set(re.findall(r"[\w']+", words.normalise(o.label)))
            ]
            if len(found) == 1:
                return found[0]
        return None

    def _match_many(self, text: str, options: Sequence[Option]) -> list[str] | None:
        keys: list[str] = []
        for part in _SEPARATORS.split(words.normalise(text)):
            part = part.strip()
            if not part:
                continue
            if _NUMBERS.match(part):
                for number in part.split():
                    if not 1 <= int(number) <= len(options):
                        return None
                    keys.append(options[int(number) - 1].key)
                continue
            key = self._match_one(part, options, loose=True)
            if key is None:
                return None
            keys.append(key)
        return keys or None

    def _validate(self, turn: _Turn, step: Step, inbound: Inbound) -> _Outcome:
        draft, ctx = turn.draft, turn.ctx
        options = self._options(step, draft, ctx)
        option_keys = [o.key for o in options]
        text = inbound.text or ""
        hint = {"multi": "hint.multi", "choice": "hint.choice"}.get(step.kind, "hint.text")
        if step.kind == "media":
            hint = f"{step.name}.hint"

        if step.kind == "multi":
            items = [k for k in option_keys if k not in ("done", "skip")]
            selected = [k for k in draft.pending.get("selected", []) if k in items]
            if inbound.option is not None:
                if inbound.option == "done":
                    return _Answer(selected or None)
                if inbound.option not in items:
                    return _Reask(hint)
                chosen = set(selected) ^ {inbound.option}
                if inbound.option in chosen and inbound.option in step.exclusive:
                    chosen = {inbound.option}
                elif inbound.option in chosen:
                    chosen -= set(step.exclusive)
                draft.pending["selected"] = [k for k in items if k in chosen]
                return _Stay(update=True)
            if (
                words.normalise(text) in words.ALIASES["done"]
                or self._match_one(text, options, False) == "done"
            ):
                return _Answer(selected or None)
            if self._unsure_without_option(step, text, option_keys):
                return _Command("skip")
            picked = self._match_many(text, options)
            if picked == ["skip"]:
                return _Command("skip")
            if picked is None or "skip" in picked:
                return _Reask(hint)
            chosen = {k for k in picked if k != "done"}
            if not chosen:
                return _Answer(selected or None)
            if chosen & set(step.exclusive):
                chosen = {next(k for k in items if k in chosen and k in step.exclusive)}
            return _Answer([k for k in items if k in chosen])

        if inbound.option is not None:
            if inbound.option not in option_keys:
                return _Reask(hint)
            return self._chosen(step, inbound.option, draft, ctx)

        if step.kind == "media":
            if inbound.media:
                parts = list(draft.answers.get(step.name) or [])
                parts.extend({"ref": m.ref, "content_type": m.content_type} for m in inbound.media)
                draft.answers[step.name] = parts
                return _Stay()
            typed = words.normalise(text)
            # "no" or "none" here means "I have nothing to send", not a wrong answer.
            if (
                self._match_one(text, options, loose=False) == "done"
                or typed in words.ALIASES["done"]
                or typed in words.ALIASES["no"]
                or typed in words.ALIASES["none"]
            ):
                return _Answer(draft.answers.get(step.name) or None)
            return _Reask(hint)

        if inbound.location is not None:  # step.location is True here
            location = inbound.location
            return _Answer(
                {"latitude": location.latitude, "longitude": location.longitude, "text": location.text}
            )

        if step.kind == "story":
            if (
                self._match_one(text, options, loose=False) == "done"
                or words.normalise(text) in words.ALIASES["done"]
            ):
                return _Answer(draft.answers.get(step.name) or None)
            if not text.strip():
                return _Reask(hint)
            draft.answers[step.name] = [*(draft.answers.get(step.name) or []), text.strip()]
            return _Stay()

        key = self._match_one(text, options, loose=step.kind == "choice")
        if key is not None:
            return self._chosen(step, key, draft, ctx)
        if step.kind == "choice" and self._unsure_without_option(step, text, option_keys):
            return _Command("skip")  # "idk" where "not sure" is not offered: move on, nothing recorded
        if step.any_text and step.options and text.strip():
            return self._chosen(step, step.options[0], draft, ctx)
        if step.parse is not None and text.strip():
            parsed = step.parse(text, draft, ctx)
            if parsed.error is not None:
                return _Reask(parsed.error)
            return _Answer(parsed.value)
        if step.kind == "text" and text.strip():
            return _Answer(text.strip())
        return _Reask(hint)

    @staticmethod
    def _unsure_without_option(step: Step, text: str, option_keys: Sequence[str]) -> bool:
        return (
            step.skippable
            and "not_sure" not in option_keys
            and words.normalise(text) in words.ALIASES["not_sure"]
        )

    def _chosen(self, step: Step, key: str, draft: Draft, ctx: FlowContext) -> _Outcome:
        if key in words.COMMAND_OPTIONS:
            return _Command(key)
        if key == "done" and step.kind in ("story", "media"):
            return _Answer(draft.answers.get(step.name) or None)
        if step.store is not None:
            return _Answer(step.store(key, draft, ctx))
        return _Answer(key)

    # ----- advance ---------------------------------------------------------------------------------------

    def _fire(self, turn: _Turn, trigger: str) -> None:
        self.machine.events[trigger].trigger(turn)
        turn.draft.step = turn.state

    def _move(self, turn: _Turn, dest: str, push: bool) -> None:
        draft = turn.draft
        origin = draft.step
        if push and origin in self.steps and self.steps[origin].in_history:
            draft.history.append(origin)
            del draft.history[:-_HISTORY_LIMIT]
        self._fire(turn, f"to_{dest}")
        self._arrive(draft, origin)

    def _arrive(self, draft: Draft, origin: str) -> None:
        if origin == self.emergency and draft.step != self.emergency:
            draft.pending.pop("return_to", None)
        if origin == self.resume and draft.step != self.resume:
            draft.pending.pop("resume_to", None)
        if draft.step == self.review:
            draft.pending.pop("changing", None)
        draft.pending.pop("selected", None)
        draft.reasked = 0
        step = self.steps.get(draft.step)
        if step is not None and step.kind == "multi":
            previous = draft.answers.get(step.name)
            draft.pending["selected"] = list(previous) if isinstance(previous, list) else []

    def _complete(self, turn: _Turn, value: Any, replies: list[Outbound]) -> StepResult:
        draft, ctx = turn.draft, turn.ctx
        say = self._say(draft.locale)
        origin = draft.step
        step = self.steps[origin]

        if origin == self.resume:
            if value == "restart":
                turn.draft = draft = Draft(step=self.resume, locale=draft.locale)
                self._move(turn, self.first, push=False)
                return self._asked(turn, replies)
            target = str(draft.pending.get("resume_to", self.first))
            self._move(turn, target if target in self.steps else self.first, push=False)
            return self._asked(turn, replies)

        draft.answers[origin] = value
        note = step.notes.get(str(choice_of(value)))
        if note is not None:
            replies.append(Outbound(text=say(note), step=origin))

        return_to = draft.pending.get("return_to")
        if step.returns and isinstance(return_to, str) and return_to in self.steps:
            self._move(turn, return_to, push=False)
            return self._asked(turn, replies)

        if step.in_history:
            draft.history.append(origin)
            del draft.history[:-_HISTORY_LIMIT]
        turn.value = value
        self._fire(turn, "advance")
        changing = draft.pending.get("changing")
        if origin == self.change:
            dest_group = self.steps[draft.step].group if draft.step in self.steps else None
            if dest_group is not None:
                draft.pending["changing"] = dest_group
        elif changing is not None and draft.step != self.final:
            dest = self.steps.get(draft.step)
            if dest is None or dest.group != changing:
                self._fire(turn, f"to_{self.review}")
        self._arrive(draft, origin)

        if draft.step == self.final:
            report = self._submit(draft, ctx)
            texts = self._finish(draft, ctx, say)
            done = Draft(step=self.final, locale=draft.locale)
            turn.draft = done
            return StepResult(
                draft=done,
                replies=[*replies, *(Outbound(text=t, step=self.final) for t in texts)],
                submit=report,
            )
        return self._asked(turn, replies)

    # ----- ask -------------------------------------------------------------------------------------------

    def _ask(self, draft: Draft, ctx: FlowContext, update: bool = False, brief: bool = False) -> Outbound:
        step = self.steps[draft.step]
        say = self._say(draft.locale)
        key = step.ask_key(draft, ctx) if step.ask_key is not None else f"{step.name}.ask"
        if step.kind in ("story", "media") and draft.answers.get(step.name):
            key = f"{step.name}.more"
        if brief and step.brief:
            key = f"{step.name}.again"
        fields = step.fields(draft, ctx, say) if step.fields is not None else {}
        options = self._options(step, draft, ctx)
        selected: tuple[str, ...] = ()
        if step.kind == "multi":
            selected = tuple(k for k in draft.pending.get("selected", []) if isinstance(k, str))
        return Outbound(
            text=say(key, **fields),
            options=options,
            multi=step.kind == "multi",
            selected=selected,
            update=update,
            request_location=step.location,
            step=step.name,
        )

    def _asked(self, turn: _Turn, replies: list[Outbound]) -> StepResult:
        replies.append(self._ask(turn.draft, turn.ctx))
        return StepResult(draft=turn.draft, replies=replies)

    def _reask(
        self, turn: _Turn, replies: list[Outbound], hint: str | None, count: bool = True
    ) -> StepResult:
        draft = turn.draft
        if draft.step == START:
            self._move(turn, self.first, push=False)
            return self._asked(turn, replies)
        say = self._say(draft.locale)
        if hint is not None:
            draft.reasked += 1 if count else 0
            text = say(hint)
            if draft.reasked >= 3:
                text = f"{text}\n\n{say('hint.help')}"
            replies.append(Outbound(text=text, step=draft.step))
            replies.append(self._ask(draft, turn.ctx, brief=True))
            return StepResult(draft=draft, replies=replies)
        return self._asked(turn, replies)
