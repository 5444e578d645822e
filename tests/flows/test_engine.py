"""The engine runs every conversation on one shared machine, and the diagram is drawn from that machine."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import transitions.core

from flows.danger import Concern
from flows.engine import START, Flow, Go, Step, answer_is
from flows.report import REPORT_FLOW
from flows.types import Draft, Inbound
from tests.flows.chat import Chat


def test_one_machine_serves_a_thousand_steps_without_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []
    original = transitions.core.Machine.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(transitions.core.Machine, "__init__", counting_init)
    machine = REPORT_FLOW.machine
    assert machine.models == []
    replies = ["hi", "1", "no", "1", "1 3", "2", "It was awful.", "done", "today", "skip", "x", "back", "999"]
    chats = [Chat() for _ in range(10)]
    steps = 0
    while steps < 1000:
        for chat in chats:
            text = replies[steps % len(replies)]
            if chat.draft is not None and chat.step == "review":
                text = "back"
            chat.send(text)
            steps += 1
            assert len(machine.models) == 0
    assert built == []
    assert REPORT_FLOW.machine is machine


def test_a_failing_step_still_removes_its_model() -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("boom")

    flow = Flow(
        name="tiny",
        steps=(
            Step("hello", options=("yes",), go=(Go("ask"),)),
            Step("ask", kind="text", parse=broken, go=(Go("end"),)),
            Step("emergency", options=("safe",), go=(Go("hello"),), returns=True),
            Step("resume", options=("continue", "restart"), go=(Go("hello"),)),
            Step("review", options=("send",), go=(Go("end", answer_is("send")), Go("review"))),
            Step("change", go=(Go("review"),)),
        ),
        first="hello",
        emergency="emergency",
        resume="resume",
        review="review",
        change="change",
        final="end",
        submit=lambda d, c: None,  # type: ignore[arg-type,return-value]
        finish=lambda d, c, s: [],
        alarm=lambda text, locale: Concern(),
    )
    ctx = Chat().ctx()
    with pytest.raises(RuntimeError):
        flow.step(Draft(step="ask"), Inbound(text="anything"), ctx)
    assert flow.machine.models == []


def test_a_flow_with_a_dead_end_is_refused_at_import() -> None:
    with pytest.raises(ValueError, match="unconditional"):
        Flow(
            name="bad",
            steps=(Step("a", options=("yes",), go=(Go("a", answer_is("yes")),)),),
            first="a",
            emergency="a",
            resume="a",
            review="a",
            change="a",
            final="end",
            submit=lambda d, c: None,  # type: ignore[arg-type,return-value]
            finish=lambda d, c, s: [],
            alarm=lambda text, locale: Concern(),
        )


def test_the_input_draft_is_never_changed() -> None:
    # Through a whole report, multi-select toggles and "back" included: the flow works on its own copy,
    # nested answers too (a snapshot as text, so that a change in place cannot hide in it).
    replies = ["hi", "1", "no", "3", "yes", "1", "2", "done", "disability", "race", "back", "race", "done"]
    replies += ["A man shouted at my neighbour.", "done", "not sure", "skip", "2", "skip", "skip", "skip"]
    chat = Chat()
    chat.send("hi")
    steps_seen = set()
    for reply in replies:
        draft = chat.draft
        assert draft is not None
        snapshot = json.dumps(draft.to_json(), sort_keys=True)
        REPORT_FLOW.step(draft, Inbound(text=reply), chat.ctx())
        assert json.dumps(draft.to_json(), sort_keys=True) == snapshot, reply
        steps_seen.add(draft.step)
        chat.send(reply)
    assert {"what", "why", "story", "again"} <= steps_seen  # the multi-select steps were among them


def test_last_active_comes_from_the_context() -> None:
    chat = Chat()
    chat.send("hi")
    assert chat.draft is not None and chat.draft.last_active == chat.now.isoformat()
    chat.now += timedelta(minutes=3)
    chat.send("1")
    assert chat.draft is not None and chat.draft.last_active == chat.now.isoformat()


def test_an_unknown_saved_step_starts_again_without_crashing() -> None:
    chat = Chat(draft=Draft(step="no_such_step", answers={"role": "victim"}))
    assert "Hello" in chat.send("hi")[0]
    assert chat.answers == {"role": "victim"}


def test_the_mermaid_diagram_is_drawn_from_the_machine_the_engine_runs() -> None:
    text = REPORT_FLOW.mermaid()
    assert text == REPORT_FLOW.mermaid()
    assert "stateDiagram-v2" in text
    edges = set(re.findall(r"^\s*(\w+) --> (\w+): advance", text, re.MULTILINE))
    running = {
        (t.source, t.dest)
        for event in REPORT_FLOW.machine.events.values()
        if event.name == "advance"
        for transitions_list in event.transitions.values()
        for t in transitions_list
    }
    assert edges == running
    assert ("safety", "emergency") in edges and ("role", "someone_else_knows") in edges
    assert ("review", "done") in edges and ("review_change", "when") in edges
    assert "[is_yes_or_not_sure]" in text
    for state in REPORT_FLOW.states:
        assert f'state "{state}" as {state}' in text
    assert "to_" not in text  # the engine's jumps are not drawn as edges
    assert START in REPORT_FLOW.states
