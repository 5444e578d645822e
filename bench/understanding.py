"""How well the bot understands people's own words, on the corpora under `tests/flows/own_words/`.

    .venv/bin/python bench/understanding.py

Prints, for each section, the figures and every line read wrongly. Sections:
- own words: the share of replies at every question understood as the person meant (the corpus and
  checks of tests/flows/test_own_words.py), and the time a reply takes through the flow;
- danger: recall of the 999 reminder on present and future danger lines, false alarms on stories of the past
  and everyday words, recall of the Samaritans/Childline message on self-harm lines and its false alarms.
Each section runs for English (the top folder) and for each language's folder (`own_words/<locale>/`).
A section is one function taking a corpus folder and its language and returning its lines of output; add one to SECTIONS
(for example the accuracy of answers on `own_words/*.toml`). The tests hold the bar; this prints the figures.
"""

from __future__ import annotations

import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.danger import assess  # noqa: E402

CORPUS = ROOT / "tests" / "flows" / "own_words"


def rate(hits: int, total: int) -> str:
    return f"{hits}/{total} = {100 * hits / total:.1f}%" if total else "0/0"


def danger(folder: Path, locale: str) -> list[str]:
    corpus = tomllib.loads((folder / "danger.toml").read_text("utf-8"))
    dangerous: Sequence[str] = corpus["danger"]
    harmless: Sequence[str] = corpus["harmless"]
    self_harm: Sequence[str] = corpus["self_harm"]
    missed = [line for line in dangerous if not assess(line, locale).danger]
    false_alarms = [line for line in harmless if assess(line, locale).danger]
    missed_self = [line for line in self_harm if not assess(line, locale).self_harm]
    false_self = [line for line in (*harmless, *dangerous) if assess(line, locale).self_harm]
    every = [*dangerous, *harmless, *self_harm]
    started = time.perf_counter()
    for line in every:
        assess(line, locale)
    each = (time.perf_counter() - started) / len(every)
    out = [
        f"time per message:        {each * 1e6:.0f} µs (mean over {len(every)} lines)",
        f"danger recall:           {rate(len(dangerous) - len(missed), len(dangerous))}",
        f"danger false alarms:     {rate(len(false_alarms), len(harmless))} (harmless lines)",
        f"self-harm recall:        {rate(len(self_harm) - len(missed_self), len(self_harm))}",
        f"self-harm false alarms:  {rate(len(false_self), len(harmless) + len(dangerous))} (other lines)",
    ]
    out += [f"  missed danger:     {line}" for line in missed]
    out += [f"  false alarm:       {line}" for line in false_alarms]
    out += [f"  missed self-harm:  {line}" for line in missed_self]
    out += [f"  false self-harm:   {line}" for line in false_self]
    return out


def own_words(_folder: Path, locale: str) -> list[str]:
    from tests.flows.test_own_words import QUESTIONS, means, start_at

    wrong: list[str] = []
    count = 0
    started = time.perf_counter()
    for (at_locale, step), lines in QUESTIONS.items():
        if at_locale != locale:
            continue
        reached = start_at(step, locale)
        for text, meaning in lines:
            count += 1
            try:
                means(reached.fork(), locale, step, text, meaning)
            except AssertionError:
                wrong.append(f"  misread at {step}: {text!r} (meant {meaning!r})")
    each = (time.perf_counter() - started) / count
    steps = sum(1 for at_locale, _ in QUESTIONS if at_locale == locale)
    return [
        f"understood as meant:     {rate(count - len(wrong), count)} ({steps} questions)",
        f"time per case:           {each * 1e3:.1f} ms (each question reached once, then each reply answered)",
        *wrong,
    ]


SECTIONS: dict[str, Callable[[Path, str], list[str]]] = {"own words": own_words, "danger": danger}


def main() -> None:
    """Each section for English (the corpus's top folder) and each language's own folder."""
    folders = [("en", CORPUS)] + [(p.name, p) for p in sorted(CORPUS.iterdir()) if p.is_dir()]
    for locale, folder in folders:
        for name, section in SECTIONS.items():
            print(f"== {name} ({locale})")
            for line in section(folder, locale):
                print(line)


if __name__ == "__main__":
    main()
