"""Reference numbers: made without look-alikes, and read however a person types them, in the chat as by staff."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flows.references import ALPHABET, EXAMPLE, format_reference, is_reference, new_reference, parse_reference
from tests.flows.chat import Chat, go_to, said

# Ways people type a reference they were given; staff commands must accept each one (tests/staff).
TYPED: list[tuple[str, Callable[[str], str]]] = [
    ("as given", lambda ref: ref),
    ("lower case", str.lower),
    ("no hyphens", lambda ref: ref.replace("-", "").lower()),
    ("spaces", lambda ref: ref.replace("-", " ")),
    ("mixed and padded", lambda ref: f"  {ref[:5].title()}{ref[5:].replace('-', ' ').lower()} "),
    ("a phone's dashes", lambda ref: ref.replace("-", "\u2013")),
    ("dots", lambda ref: ref.replace("-", ".").lower()),
]

# Characters never in a reference, for the ones people confuse: 0/O, 1/I/L.
LOOK_ALIKES = "0O1IL"


def with_look_alike(ref: str, char: str) -> str:
    """The reference with its last character swapped for a look-alike."""
    return ref[:-1] + char


def test_references_have_no_look_alikes() -> None:
    refs = {new_reference() for _ in range(2000)}
    assert len(refs) == 2000
    for ref in refs:
        assert is_reference(ref), ref
        assert not set(ref[3:].replace("-", "")) & set("01OIL")
    assert set(ALPHABET).isdisjoint("01OIL")


@pytest.mark.parametrize(("how", "typed"), TYPED)
def test_every_way_of_typing_a_reference_reads_as_it(how: str, typed: Callable[[str], str]) -> None:
    for ref in (EXAMPLE, *(new_reference() for _ in range(50))):
        assert parse_reference(typed(ref)) == ref, (how, typed(ref))


@pytest.mark.parametrize("char", LOOK_ALIKES)
def test_a_look_alike_letter_is_refused_not_guessed(char: str) -> None:
    assert parse_reference(with_look_alike(EXAMPLE, char)) is None
    assert parse_reference(with_look_alike(EXAMPLE, char).lower()) is None


@pytest.mark.parametrize(
    "typed", ["", "HC", "HC-7K3Q", "HC-7K3Q-9XP", "HC-7K3Q-9XPDD", "7K3Q-9XPD", "XX-7K3Q-9XPD"]
)
def test_other_shapes_are_not_references(typed: str) -> None:
    assert parse_reference(typed) is None


def test_format_takes_only_the_alphabet() -> None:
    assert format_reference("7K3Q9XPD") == EXAMPLE
    with pytest.raises(ValueError):
        format_reference("7K3Q9XP0")


@pytest.mark.parametrize(("how", "typed"), TYPED)
def test_the_chat_reads_every_way_of_typing_it(how: str, typed: Callable[[str], str]) -> None:
    chat = go_to(Chat(), "why")
    chat.send(f"status {typed(EXAMPLE)}")
    assert chat.result.status_query == EXAMPLE
    chat.send(typed(EXAMPLE))  # on its own, a reference can only mean "news on this report"
    assert chat.result.status_query == EXAMPLE
    assert "why" not in chat.answers


@pytest.mark.parametrize("char", LOOK_ALIKES)
def test_the_chat_says_a_look_alike_is_not_a_reference_and_keeps_it_out_of_the_report(char: str) -> None:
    wrong = with_look_alike(EXAMPLE, char)
    for message in (f"status {wrong}", wrong):
        chat = go_to(Chat(), "why")
        reply = chat.send(message)
        assert chat.result.status_query is None
        assert said(reply, "does not look like a reference", EXAMPLE, "Why do you think it happened?")
        assert chat.step == "why" and "why" not in chat.answers
