"""The `Flow`: one shared `transitions` machine per flow, and the one step that changes anything. No I/O.

A flow is a list of `Step`s. Each step has the same small shape (as in Home Assistant's config flows):
*ask* (render the question from the catalog), *interpret* (turn what was sent into an answer: one small
interpreter per kind of question, in `flows.engine.interpret`), *advance* (conditional transitions
declared as data). All flows run on ONE shared `transitions.Machine` per flow, built at import with
`model=None`; each call to `Flow.step` puts a throw-away model at the saved step (`Machine.set_state`)
and fires the machine's events on it (`Event.trigger(model)`). The model is never added to the machine:
`add_model` would bind a convenience method per state and trigger to it, which cost half of the step,
and the engine calls none of them (a Machine per conversation costs about 12 times more, and models
left behind in a machine leak memory).

Besides the declared `advance` transitions, the engine moves between steps only through the machine's own
`to_<step>` triggers: for `back`, `999`, "continue where I was" and "change an answer" from the review.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from transitions import Machine
from transitions.extensions import GraphMachine

from flows import catalog, languages, references, understand, words
from flows.access import Aside
from flows.danger import Concern
from flows.engine.interpret import Reply, interpret
from flows.engine.model import (
    SAID,
    START,
    Account,
    Answer,
    Command,
    Reask,
    Say,
    Stay,
    Step,
    Turn,
    choice_of,
)
from flows.types import (
    Draft,
    EarlierReport,
    FlowContext,
    Inbound,
    Option,
    Outbound,
    ReportFields,
    StatusInfo,
    StepResult,
)
from flows.words import COMMAND_OPTIONS

# Keys the engine itself uses, whatever the flow.
ENGINE_KEYS = (
    "help.text",
    "alarm.text",
    "alarm.safe",
    "alarm.self_harm",
    "stop.text",
    "delete.text",
    "exit.cleared",
    "exit.not_cleared_none",
    "exit.not_cleared_one",
    "exit.not_cleared",
    "exit.manual",
    "exit.manual_nothing",
    "back.first",
    "skip.not_allowed",
    "media.kept",
    "media.not_here",
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
    "add.linked",
    "add.not_found",
    "add.which",
    "add.bad",
    "option.skip",
    "option.done",
    "language.name",
    "language.ask",
)
_HISTORY_LIMIT = 200


def _keep_said(draft: Draft, step: str, said: str | None) -> None:
    """The person's words said with the option picked at `step` (`SAID`); gone when answered without."""
    kept = draft.answers.get(SAID)
    kept = dict(kept) if isinstance(kept, dict) else {}
    if said:
        kept[step] = said
    elif step not in kept:
        return
    else:
        del kept[step]
    draft.answers[SAID] = kept


def _locale(draft: Draft | None, ctx: FlowContext) -> str:
    """The conversation's language; with none yet, the one the platform says the person uses."""
    return draft.locale if draft is not None else (ctx.language or catalog.DEFAULT_LOCALE)


class _Diagram:
    """The model GraphMachine draws (it needs one to attach `get_graph`)."""

    state = START


class Flow:
    """A conversation flow declared as data, run on one shared `transitions` machine.

    `step(draft, inbound, ctx)` is the only entry point that changes anything: it never mutates its input,
    performs no I/O, and returns the new draft, the replies, and what the service must do (submit a report,
    erase the conversation, look up a status). `status_reply` renders the answer to a status look-up, and
    `mermaid` draws the machine the engine runs.

    `account` names the step where the person tells what happened in their own words: words typed at a
    question they do not answer join it (with the one-line note `<account>.added`), never lost.
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
        aside: Callable[[str, str], Aside] | None = None,
        keys: Sequence[str] = (),
        account: str | None = None,
        reuse: Callable[[Draft, EarlierReport, FlowContext], None] | None = None,
        reuse_before: str = "",
    ) -> None:
        self.name = name
        self.steps: dict[str, Step] = {step.name: step for step in steps}
        self.first, self.emergency, self.resume = first, emergency, resume
        self.review, self.change, self.final = review, change, final
        self.account = account if account in self.steps else None
        self._submit, self._finish, self._alarm = submit, finish, alarm
        self._aside = aside
        # A new report in a series: puts the earlier report's answers in the draft, unless the person has
        # already answered `reuse_before` (then they have been asked about themselves already).
        self.reuse, self.reuse_before = reuse, reuse_before
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
        if self.account is not None:
            keys.update((f"{self.account}.added", f"{self.account}.kept"))
        for step in self.steps.values():
            keys.add(f"{step.name}.why")
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
        work = draft.copy() if draft is not None else self._new_draft(ctx)
        if work.step == self.final or work.step not in self.states:
            work = Draft(
                step=START, locale=work.locale, answers=work.answers if work.step != self.final else {}
            )
        turn = Turn(work, ctx)
        self.machine.set_state(work.step, model=turn)  # not add_model: see the module's docstring
        result = self._handle(turn, inbound)
        result.draft.last_active = ctx.now.isoformat()
        return result

    @staticmethod
    def _new_draft(ctx: FlowContext) -> Draft:
        """A new conversation: in the language the platform says the person uses; where it cannot say,
        in the first enabled language, and the welcome lists the others."""
        enabled = ctx.settings.languages
        locale = ctx.language if ctx.language in enabled else (enabled[0] if enabled else "")
        draft = Draft(step=START, locale=locale if locale in catalog.CATALOGS else catalog.DEFAULT_LOCALE)
        if ctx.language is None and len(enabled) > 1:
            draft.pending["offer_languages"] = True
        return draft

    def status_reply(
        self, draft: Draft | None, info: StatusInfo | None, ctx: FlowContext, *, wait: bool = False
    ) -> list[Outbound]:
        """The answer to `status <reference>` (or "wait": too many look-ups failed), then the current
        question again (or how to start)."""
        locale = _locale(draft, ctx)
        ctx = ctx.in_language(locale)
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
                submitted_on=languages.show_date(info.submitted_on, locale),
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

    def _handle(self, turn: Turn, inbound: Inbound) -> StepResult:
        draft = turn.draft
        replies: list[Outbound] = []
        # Right after a danger reminder ("we can go on when you are ready"), "I'm safe now" answers the
        # reminder, not the question: it is thanked and the question asked again, and it joins no answer.
        reminded = bool(draft.pending.pop("reminded", False))
        early = self._commands(turn, inbound, replies)
        if early is not None:
            return early
        early = self._safety_net(turn, inbound, replies, reminded)
        if early is not None:
            return early
        early = self._aside_said(turn, inbound, replies)
        if early is not None:
            return early
        early = self._not_an_answer(turn, inbound, replies)
        if early is not None:
            return early
        step = self.steps[draft.step]
        if inbound.media and step.kind != "media":
            inbound = Inbound(text=inbound.text)
        options = self._options(step, draft, turn.ctx)
        outcome = interpret(Reply(step, draft, turn.ctx, options, inbound, self.account is not None))
        return self._after(turn, outcome, replies)

    def _after(self, turn: Turn, outcome: Any, replies: list[Outbound]) -> StepResult:
        draft = turn.draft
        if isinstance(outcome, Reask):
            return self._reask(turn, replies, hint=outcome.hint)
        if isinstance(outcome, Command):
            return self._command(turn, outcome.name, replies)
        if isinstance(outcome, Stay):
            draft.reasked = 0
            replies.append(self._ask(draft, turn.ctx, update=outcome.update, stay=True))
            return StepResult(draft=draft, replies=replies)
        if isinstance(outcome, Account):
            self._keep(draft, outcome.text, replies)
            return self._reask(turn, replies, hint=None, count=False, brief=True)
        assert isinstance(outcome, Answer)
        if outcome.account is not None:
            self._keep(draft, outcome.account, replies)
        return self._complete(turn, outcome.value, replies, said=outcome.said)

    def _keep(self, draft: Draft, text: str, replies: list[Outbound]) -> None:
        """Words that answered nothing join the person's account, and they are told so in one line."""
        if self.account is None:
            return
        parts = draft.answers.get(self.account)
        draft.answers[self.account] = [*(parts if isinstance(parts, list) else []), text]
        replies.append(Outbound(text=self._say(draft.locale)(f"{self.account}.added"), step=self.account))

    def _keep_media(self, draft: Draft, inbound: Inbound, replies: list[Outbound]) -> None:
        """Photos, files, videos or voice notes sent at another question join the evidence answer (the
        first question that takes them), and the person is told so in one line."""
        evidence = next((s.name for s in self.steps.values() if s.kind == "media"), None)
        if evidence is None:
            replies.append(Outbound(text=self._say(draft.locale)("media.not_here"), step="media"))
            return
        parts = draft.answers.get(evidence)
        kept = [{"ref": m.ref, "content_type": m.content_type} for m in inbound.media]
        draft.answers[evidence] = [*(parts if isinstance(parts, list) else []), *kept]
        replies.append(Outbound(text=self._say(draft.locale)("media.kept"), step="media"))

    def _commands(self, turn: Turn, inbound: Inbound, replies: list[Outbound]) -> StepResult | None:
        """The words that work anywhere, a status look-up, or a button that runs a command."""
        chosen = self._language_chosen(turn, inbound)
        if chosen is not None:
            return self._switch(turn, chosen, replies)
        if inbound.option is not None:
            return self._command(turn, inbound.option, replies) if inbound.option in COMMAND_OPTIONS else None
        text = inbound.text or ""
        if not self._plain(inbound) or not text or inbound.edited:
            return None
        status = self._status(turn, text, replies) or self._add(turn, text, replies)
        return status if status is not None else self._typed_command(turn, text, replies)

    def _typed_command(self, turn: Turn, text: str, replies: list[Outbound]) -> StepResult | None:
        """A word that works anywhere, typed as the whole message ("help", "język", "language")."""
        cmd = words.command(text, turn.draft.locale)
        if cmd == "language":
            return self._offer_languages(turn, replies)
        return self._command(turn, cmd, replies) if cmd is not None else None

    # ----- languages -------------------------------------------------------------------------------------

    def _language_chosen(self, turn: Turn, inbound: Inbound) -> str | None:
        """The language this message picks: a language's button, its name typed at any question, or its
        number right after the languages were listed (or at the welcome that lists them)."""
        draft, enabled = turn.draft, turn.ctx.settings.languages
        listed = bool(draft.pending.pop("languages", False))
        if len(enabled) < 2 or inbound.edited:
            return None
        if inbound.option is not None:
            return languages.from_option(inbound.option, enabled)
        text = inbound.text or ""
        if not text or not self._plain(inbound):
            return None
        return self._language_typed(turn, text, listed)

    def _language_typed(self, turn: Turn, text: str, listed: bool) -> str | None:
        """A language's name ("Polski", "romana"), or the number or label of one of the languages offered."""
        draft, enabled = turn.draft, turn.ctx.settings.languages
        named = languages.named(text, enabled)
        if named is not None and named != draft.locale:
            return named
        offered = self._language_options(turn, listed)
        key = understand.match_option(text, offered, draft.locale) if offered else None
        return languages.from_option(key, enabled) if key is not None else None

    def _language_options(self, turn: Turn, listed: bool) -> tuple[Option, ...]:
        """The options a number may pick a language from: the list `language` showed, or the welcome's."""
        draft = turn.draft
        if listed:
            return languages.options(turn.ctx.settings.languages)
        if draft.step == self.first and draft.pending.get("offer_languages"):
            return self._options(self.steps[draft.step], draft, turn.ctx)
        return ()

    def _offer_languages(self, turn: Turn, replies: list[Outbound]) -> StepResult:
        """`language`: the languages by their own names; the next message may pick one by number."""
        draft, enabled = turn.draft, turn.ctx.settings.languages
        if len(enabled) < 2:
            return self._reask(turn, replies, hint=None, count=False)
        draft.pending["languages"] = True
        options = languages.options(enabled)
        replies.append(
            Outbound(text=self._say(draft.locale)("language.ask"), options=options, step="language")
        )
        return StepResult(draft=draft, replies=replies)

    def _switch(self, turn: Turn, locale: str, replies: list[Outbound]) -> StepResult:
        """Everything from now on in `locale`; every answer kept; the current question asked again."""
        turn.draft.locale = locale
        return self._reask(turn, replies, hint=None, count=False)

    def _status(self, turn: Turn, text: str, replies: list[Outbound]) -> StepResult | None:
        """`status <reference>` or a bare reference: the service looks it up."""
        asked, reference = references.status_request(text)
        if not asked:
            return None
        if reference is None:
            key = "status.how" if words.normalise(text) == "status" else "status.bad"
            replies.append(Outbound(text=self._say(turn.draft.locale)(key), step="status"))
            return self._reask(turn, replies, hint=None)
        code = references.status_code(text)
        return StepResult(draft=turn.draft, replies=[], status_query=reference, status_code=code)

    def _add(self, turn: Turn, text: str, replies: list[Outbound]) -> StepResult | None:
        """`add <reference> [code]`, or at the start "it's the same man again": this report is about the
        same thing as an earlier one; the service checks the person may add to it (own chat, or the
        secret code). The words alone mean this chat's last report (link_query "")."""
        draft = turn.draft
        asked, reference = references.add_request(text)
        if not asked:
            starting = draft.step in (START, self.first) and "linked_to" not in draft.answers
            if self.reuse is None or not starting or not understand.says_again(text, draft.locale):
                return None
            return StepResult(draft=draft, replies=[], link_query="")
        if reference is None:
            replies.append(Outbound(text=self._say(draft.locale)("add.bad"), step="add"))
            return self._reask(turn, replies, hint=None)
        code = references.add_code(text)
        return StepResult(draft=draft, replies=[], link_query=reference, link_code=code)

    def link_reply(
        self,
        draft: Draft | None,
        reference: str | None,
        ctx: FlowContext,
        *,
        wait: bool = False,
        earlier: EarlierReport | None = None,
        asked: str | None = None,
    ) -> tuple[Draft, list[Outbound]]:
        """The answer to `add <reference>`: the draft now joined to that report (`linked_to`), or the same
        words whether it does not exist or the code was wrong (nothing is revealed); then the question
        again. A person with no report in progress starts one, joined to the earlier report. Before the
        questions about the person, the earlier report's answers are offered again (the flow's `reuse`)."""
        work = draft.copy() if draft is not None else Draft(step=START)
        ctx = ctx.in_language(work.locale)
        say = self._say(work.locale)
        if wait:
            key = "status.wait"
        elif reference is None:
            key = "add.which" if asked == "" else "add.not_found"
        else:
            key = "add.linked"
            self._join(work, reference, earlier, ctx)
        replies = [Outbound(text=say(key, reference=reference or ""), step="add")]
        if work.step in (START, self.final) or work.step not in self.steps:
            replies.append(Outbound(text=say("status.how_to_start"), step="add"))
        else:
            replies.append(self._ask(work, ctx))
        return work, replies

    def _join(self, work: Draft, reference: str, earlier: EarlierReport | None, ctx: FlowContext) -> None:
        work.answers["linked_to"] = reference
        if work.step in (START, self.final) or work.step not in self.steps:
            work.step, work.history = self.first, []
        if earlier is not None and self.reuse is not None and self.reuse_before not in work.answers:
            self.reuse(work, earlier, ctx)

    @staticmethod
    def _plain(inbound: Inbound) -> bool:
        return not inbound.media and inbound.location is None and inbound.unsupported is None

    def _safety_net(
        self, turn: Turn, inbound: Inbound, replies: list[Outbound], reminded: bool
    ) -> StepResult | None:
        """ "I'm safe now" after a reminder; a 999 reminder when words suggest danger now."""
        draft, text = turn.draft, inbound.text or ""
        say = self._say(draft.locale)
        safe = understand.option_words(draft.locale).get("safe", ())
        if reminded and self._plain(inbound) and inbound.option is None and understand.fold(text) in safe:
            replies.append(Outbound(text=say("alarm.safe"), step="alarm"))
            return self._reask(turn, replies, hint=None)
        concern = self._alarm(text, draft.locale) if text and draft.step != self.emergency else Concern()
        if concern.danger:
            replies.append(Outbound(text=say("alarm.text"), step="alarm"))
            draft.pending["reminded"] = True
        if concern.self_harm:  # Samaritans and Childline, calmly; then the conversation goes on
            replies.append(Outbound(text=say("alarm.self_harm"), step="alarm"))
        return None

    def _aside_said(self, turn: Turn, inbound: Inbound, replies: list[Outbound]) -> StepResult | None:
        """Words that say something besides the answer ("I am deaf"): answered, remembered, and the
        question asked again when the message said nothing else."""
        text = inbound.text or ""
        if self._aside is None or not text or not self._plain(inbound) or inbound.option is not None:
            return None
        draft = turn.draft
        aside = self._aside(text, draft.locale)
        if aside.key is None:
            return None
        if aside.note is not None:
            draft.answers[aside.note] = True
        replies.append(Outbound(text=self._say(draft.locale)(aside.key), step="aside"))
        if not aside.only or self._names_an_option(turn, text):
            return None  # "because I'm deaf" at "why" also answers it (the question's words name an option)
        return self._reask(turn, replies, hint=None, count=False)

    def _names_an_option(self, turn: Turn, text: str) -> bool:
        """Whether the question's own words in `text` name one of the options offered now."""
        step = self.steps.get(turn.draft.step)
        if step is None:
            return False
        offered = {o.key for o in self._options(step, turn.draft, turn.ctx)}
        spotted = understand.spot(text, understand.step_words(turn.draft.locale, step.name))
        return any(key in offered for key in spotted)

    def _not_an_answer(self, turn: Turn, inbound: Inbound, replies: list[Outbound]) -> StepResult | None:
        """Edits, the first message, a long silence, stickers, things this question cannot use, "why?"."""
        draft, ctx = turn.draft, turn.ctx
        say = self._say(draft.locale)
        if inbound.edited:
            replies.append(Outbound(text=say("edited.text"), step="edited"))
            return self._reask(turn, replies, hint=None)
        if draft.step == START:
            return self._started(turn, inbound, replies)
        if self._idle(draft, ctx):
            return self._offer_resume(turn, replies)
        if inbound.unsupported is not None:
            replies.append(Outbound(text=say("unsupported.text"), step="unsupported"))
            return self._reask(turn, replies, hint=None)
        return self._does_not_fit(turn, inbound, replies)

    def _started(self, turn: Turn, inbound: Inbound, replies: list[Outbound]) -> StepResult:
        """The first message: a story typed straight away is kept, then the welcome."""
        text = inbound.text or ""
        if inbound.media:  # a photo as the very first message is kept too
            self._keep_media(turn.draft, inbound, replies)
        if inbound.option is None and self._plain(inbound) and understand.is_account(text, turn.draft.locale):
            self._keep(turn.draft, text.strip(), replies)
        self._move(turn, self.first, push=False)
        return self._asked(turn, replies)

    def _does_not_fit(self, turn: Turn, inbound: Inbound, replies: list[Outbound]) -> StepResult | None:
        """A photo or a location where the question cannot use one; a location where it can; "why?"."""
        draft = turn.draft
        say = self._say(draft.locale)
        text = inbound.text or ""
        step = self.steps[draft.step]
        if inbound.media and step.kind != "media":
            # Kept for the evidence question, never refused: a photo sent early is still evidence.
            self._keep_media(draft, inbound, replies)
            if not text.strip():
                return self._reask(turn, replies, hint=None)
        if inbound.location is not None and not step.location:
            replies.append(Outbound(text=say("location.declined"), step="location"))
            return self._reask(turn, replies, hint=None)
        if inbound.location is not None:
            location = inbound.location
            value = {"latitude": location.latitude, "longitude": location.longitude, "text": location.text}
            return self._complete(turn, value, replies)
        if inbound.option is None and self._asks_why(step, draft, turn.ctx, text):
            replies.append(Outbound(text=say(f"{step.name}.why"), step=step.name))
            return self._reask(turn, replies, hint=None, count=False, brief=True)
        return None

    def _erase(self, turn: Turn, cmd: str) -> StepResult:
        draft, ctx = turn.draft, turn.ctx
        say = self._say(draft.locale)
        fresh = Draft(step=START, locale=draft.locale)
        if cmd == "exit":
            # Where the bot cannot clear the chat, say only what is true: answers are deleted only when
            # there were some (not after a report was sent), and the messages stay on the phone. Where
            # it can, the channel picks "Chat closed." or what is left to delete once it has deleted.
            manual = "exit.manual" if draft.answers else "exit.manual_nothing"
            key = "exit.cleared" if ctx.can_clear_chat else manual
            left = ("exit.not_cleared_none", "exit.not_cleared_one", "exit.not_cleared")
            if_left = tuple(say(k, count="{count}") for k in left) if ctx.can_clear_chat else ()
            out = Outbound(text=say(key), clear_chat=True, step="exit", not_cleared=if_left)
        else:
            out = Outbound(text=say(f"{cmd}.text"), step=cmd)
        return StepResult(draft=fresh, replies=[out], erase=True)

    def _asks_why(self, step: Step, draft: Draft, ctx: FlowContext, text: str) -> bool:
        """ "Why?", "what for": unless it is the name of an option here ("Why" at "change an answer")."""
        if not understand.asks_why(text, draft.locale):
            return False
        return understand.match_option(text, self._options(step, draft, ctx), draft.locale) is None

    def _command(self, turn: Turn, cmd: str, replies: list[Outbound]) -> StepResult:
        if cmd in ("stop", "delete", "exit"):
            return self._erase(turn, cmd)
        if cmd == "help":
            replies.append(Outbound(text=self._say(turn.draft.locale)("help.text"), step="help"))
            return self._reask(turn, replies, hint=None, count=False)
        if cmd == "999":
            return self._emergency(turn, replies)
        return self._move_command(turn, cmd, replies)

    def _move_command(self, turn: Turn, cmd: str, replies: list[Outbound]) -> StepResult:
        """start, back, skip."""
        draft = turn.draft
        if cmd == "start" and (draft.step != START and (draft.step != self.first or draft.answers)):
            return self._offer_resume(turn, replies)
        if draft.step == START or cmd == "start":  # back / skip before anything was asked; start
            self._move(turn, self.first, push=False)
            return self._asked(turn, replies)
        if cmd == "back":
            return self._back(turn, replies)
        return self._skip(turn, replies)

    def _emergency(self, turn: Turn, replies: list[Outbound]) -> StepResult:
        draft = turn.draft
        if draft.step != self.emergency:
            back_to = draft.step
            if draft.step == START:
                back_to = self.first
            elif draft.step == self.resume:
                back_to = str(draft.pending.get("resume_to", self.first))
            self._move(turn, self.emergency, push=draft.step != START)
            draft.pending["return_to"] = back_to
        return self._asked(turn, replies)

    def _back(self, turn: Turn, replies: list[Outbound]) -> StepResult:
        draft = turn.draft
        while draft.history:
            target = draft.history.pop()
            if target in self.steps:
                self._move(turn, target, push=False)
                return self._asked(turn, replies)
        replies.append(Outbound(text=self._say(draft.locale)("back.first"), step="back"))
        return self._reask(turn, replies, hint=None, count=False)

    def _skip(self, turn: Turn, replies: list[Outbound]) -> StepResult:
        draft = turn.draft
        step = self.steps[draft.step]
        if not step.skippable:
            return self._reask(turn, replies, hint="skip.not_allowed")
        value: Any = None
        if step.skip_as is not None:
            store = step.store
            value = store(step.skip_as, draft, turn.ctx) if store is not None else step.skip_as
        if step.kind in ("story", "media"):  # keep what was already sent
            value = draft.answers.get(step.name) or None
        return self._complete(turn, value, replies)

    def _offer_resume(self, turn: Turn, replies: list[Outbound]) -> StepResult:
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

    def _options(self, step: Step, draft: Draft, ctx: FlowContext) -> tuple[Option, ...]:
        say = self._say(draft.locale)
        pairs: list[tuple[str, str]] = []
        if step.dynamic_options is not None:
            for key, label in step.dynamic_options(draft, ctx):
                pairs.append((key, label if label is not None else say(f"option.{key}")))
        else:
            pairs.extend((key, say(f"option.{key}")) for key in step.options)
        if step.kind in ("multi", "story", "media"):
            pairs.append(("done", say("option.done")))
        if step.skippable and step.offer_skip:
            pairs.append(("skip", say("option.skip")))
        pairs.extend(self._offered_languages(step, draft, ctx))
        return tuple(Option(key=key, label=label) for key, label in pairs)

    def _offered_languages(self, step: Step, draft: Draft, ctx: FlowContext) -> list[tuple[str, str]]:
        """At the welcome, where the platform could not say the person's language: the other languages."""
        if step.name != self.first or not draft.pending.get("offer_languages"):
            return []
        return [(o.key, o.label) for o in languages.options(ctx.settings.languages, current=draft.locale)]

    # ----- advance ---------------------------------------------------------------------------------------

    def _fire(self, turn: Turn, trigger: str) -> None:
        self.machine.events[trigger].trigger(turn)
        turn.draft.step = turn.state

    def _move(self, turn: Turn, dest: str, push: bool) -> None:
        draft = turn.draft
        origin = draft.step
        if push and origin in self.steps and self.steps[origin].in_history:
            draft.history.append(origin)
            del draft.history[:-_HISTORY_LIMIT]
        self._fire(turn, f"to_{dest}")
        self._arrive(draft, origin)

    def _arrive(self, draft: Draft, origin: str) -> None:
        pending = draft.pending
        if origin == self.emergency and draft.step != self.emergency:
            pending.pop("return_to", None)
        if origin == self.resume and draft.step != self.resume:
            pending.pop("resume_to", None)
        if draft.step == self.review:
            pending.pop("changing", None)
        if draft.step != self.account:
            pending.pop("replace", None)
        pending.pop("selected", None)
        pending.pop("toggled", None)
        draft.reasked = 0
        step = self.steps.get(draft.step)
        if step is not None and step.kind == "multi":
            previous = draft.answers.get(step.name)
            pending["selected"] = list(previous) if isinstance(previous, list) else []

    def _complete(
        self, turn: Turn, value: Any, replies: list[Outbound], said: str | None = None
    ) -> StepResult:
        draft = turn.draft
        origin = draft.step
        step = self.steps[origin]
        if origin == self.resume:
            return self._resumed(turn, value, replies)
        draft.answers[origin] = value
        _keep_said(draft, origin, said)
        note = step.notes.get(str(choice_of(value)))
        if note is not None:
            replies.append(Outbound(text=self._say(draft.locale)(note), step=origin))
        return_to = draft.pending.get("return_to")
        if step.returns and isinstance(return_to, str) and return_to in self.steps:
            self._move(turn, return_to, push=False)
            return self._asked(turn, replies)
        if step.in_history:
            draft.history.append(origin)
            del draft.history[:-_HISTORY_LIMIT]
        turn.value = value
        self._fire(turn, "advance")
        self._keep_changing(turn, origin)
        self._arrive(draft, origin)
        if draft.step == self.final:
            return self._submitted(turn, replies)
        return self._asked(turn, replies)

    def _resumed(self, turn: Turn, value: Any, replies: list[Outbound]) -> StepResult:
        draft = turn.draft
        if value == "restart":
            turn.draft = Draft(step=self.resume, locale=draft.locale)
            self._move(turn, self.first, push=False)
            return self._asked(turn, replies)
        target = str(draft.pending.get("resume_to", self.first))
        self._move(turn, target if target in self.steps else self.first, push=False)
        return self._asked(turn, replies)

    def _keep_changing(self, turn: Turn, origin: str) -> None:
        """After "change an answer", stay in the chosen group's questions, then go back to the review."""
        draft = turn.draft
        changing = draft.pending.get("changing")
        if origin == self.change:
            dest_group = self.steps[draft.step].group if draft.step in self.steps else None
            if dest_group is not None:
                draft.pending["changing"] = dest_group
        elif changing is not None and draft.step != self.final:
            dest = self.steps.get(draft.step)
            if dest is None or dest.group != changing:
                self._fire(turn, f"to_{self.review}")

    def _submitted(self, turn: Turn, replies: list[Outbound]) -> StepResult:
        draft, ctx = turn.draft, turn.ctx
        report = self._submit(draft, ctx)
        texts = self._finish(draft, ctx, self._say(draft.locale))
        done = Draft(step=self.final, locale=draft.locale)
        turn.draft = done
        return StepResult(
            draft=done,
            replies=[*replies, *(Outbound(text=t, step=self.final) for t in texts)],
            submit=report,
        )

    # ----- ask -------------------------------------------------------------------------------------------

    def _ask_key(self, step: Step, draft: Draft, ctx: FlowContext, stay: bool, brief: bool) -> str:
        key = step.ask_key(draft, ctx) if step.ask_key is not None else f"{step.name}.ask"
        if step.kind in ("story", "media") and draft.answers.get(step.name):
            if step.name == self.account and not stay:
                key = f"{step.name}.ask" if draft.pending.get("replace") else f"{step.name}.kept"
            else:
                key = f"{step.name}.more"
        if brief and step.brief:
            key = f"{step.name}.again"
        return key

    def _ask(
        self, draft: Draft, ctx: FlowContext, update: bool = False, brief: bool = False, stay: bool = False
    ) -> Outbound:
        step = self.steps[draft.step]
        say = self._say(draft.locale)
        key = self._ask_key(step, draft, ctx, stay, brief)
        fields = step.fields(draft, ctx, say) if step.fields is not None else {}
        options = self._options(step, draft, ctx)
        selected: tuple[str, ...] = ()
        if step.kind == "multi":
            selected = tuple(k for k in draft.pending.get("selected", []) if isinstance(k, str))
        text = say(key, **fields)
        if step.name == self.first and draft.pending.get("offer_languages"):
            text = f"{text}\n\n{languages.line(ctx.settings.languages)}"
        return Outbound(
            text=text,
            options=options,
            multi=step.kind == "multi",
            selected=selected,
            update=update,
            request_location=step.location,
            step=step.name,
        )

    def _asked(self, turn: Turn, replies: list[Outbound]) -> StepResult:
        replies.append(self._ask(turn.draft, turn.ctx))
        return StepResult(draft=turn.draft, replies=replies)

    def _reask(
        self,
        turn: Turn,
        replies: list[Outbound],
        hint: str | None,
        count: bool = True,
        brief: bool = False,
    ) -> StepResult:
        draft = turn.draft
        if draft.step == START:
            self._move(turn, self.first, push=False)
            return self._asked(turn, replies)
        if hint is None:
            replies.append(self._ask(draft, turn.ctx, brief=brief, stay=True))
            return StepResult(draft=draft, replies=replies)
        draft.reasked += 1 if count else 0
        text = self._say(draft.locale)(hint)
        if draft.reasked >= 3:
            text = f"{text}\n\n{self._say(draft.locale)('hint.help')}"
        replies.append(Outbound(text=text, step=draft.step))
        replies.append(self._ask(draft, turn.ctx, brief=True, stay=True))
        return StepResult(draft=draft, replies=replies)
