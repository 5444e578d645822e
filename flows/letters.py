"""Letters made comparable, in every language, before any word is looked up. No I/O.

People on phones drop accents ("zagrozenie" for "zagrożenie", "frica" for "frică"), type Romanian
ş/ţ with a cedilla from older keyboards, type Urdu on an Arabic keyboard (ي for ی, ك for ک, ه for both ہ and ھ),
add or leave out Urdu's short-vowel marks, and type digits as ۱۲۳. `plain` maps all of these to one
form, and is applied to what people type AND to the vocabulary it is compared with, so a phrase listed
once matches every way of typing it. Numbers stay numbers (`۹۹۹` reads as `999`).
"""

from __future__ import annotations

import re
import unicodedata

# Arabic-script marks that change how a word is voiced, not which word it is (harakat, the superscript
# alef, Quranic marks) and the tatweel that only stretches a line.
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_SAME_LETTER = str.maketrans(
    {
        "ي": "ی",  # Arabic yeh -> Farsi/Urdu yeh
        "ى": "ی",  # alef maksura
        "ك": "ک",  # Arabic kaf -> keheh
        "ه": "ہ",  # Arabic heh -> Urdu heh goal; an Arabic keyboard has one heh for both of Urdu's,
        "ھ": "ہ",  # so the two-eyed heh of aspirates (بھ, گھر) folds to the same letter
        "ş": "ș",  # Romanian s with cedilla -> s with comma below
        "ţ": "ț",
        "ł": "l",  # Polish l with stroke: no decomposition of its own
        "\u200c": " ",  # zero-width non-joiner: a word break people type between Urdu words
        "\u200d": "",
        "\u200e": "",  # direction marks the bot itself may add
        "\u200f": "",
    }
)


def plain(text: str) -> str:
    """Lower case, no accents or vowel marks, one form for each letter, ASCII digits."""
    text = _ARABIC_MARKS.sub("", text.lower().translate(_SAME_LETTER))
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    kept = kept.translate(_SAME_LETTER)  # letters that decomposition uncovered (ئ -> ي + hamza)
    return "".join(_digit(ch) for ch in unicodedata.normalize("NFC", kept))


def _digit(ch: str) -> str:
    """A decimal digit of any script as ASCII (۳ -> 3); superscripts and the like are not digits here."""
    return str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch
