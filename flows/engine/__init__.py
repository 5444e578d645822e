"""A generic engine that runs any conversation flow declared as data. No I/O.

- `flows.engine.model`: what a flow is declared with (`Step`, `Go`, `When`, ...) and what an interpreter
  returns;
- `flows.engine.interpret`: one small interpreter per kind of question (choice, multi, text, story, media);
- `flows.engine.flow`: the `Flow`, its one shared `transitions` machine, and the step.

The words the engine understands come from `flows.understand` (data in `flows/vocab/<locale>/`).
"""

from flows.engine.flow import ENGINE_KEYS, Flow
from flows.engine.model import (
    SAID,
    START,
    Earlier,
    Given,
    Go,
    Kind,
    Parsed,
    Say,
    Step,
    Told,
    When,
    answer_is,
    choice_of,
)
from flows.words import COMMAND_OPTIONS

__all__ = [
    "COMMAND_OPTIONS",
    "ENGINE_KEYS",
    "SAID",
    "START",
    "Earlier",
    "Flow",
    "Given",
    "Go",
    "Kind",
    "Parsed",
    "Say",
    "Step",
    "Told",
    "When",
    "answer_is",
    "choice_of",
]
