"""The safety net: does free text suggest someone is in danger right now? No I/O.

Recall matters more than precision here: a needless 999 reminder costs one short message, a missed one may
cost much more. So the patterns are broad and only the most obvious harmless phrases are excluded.
"""

from __future__ import annotations

import re

_WHO = r"(?:he|she|they|him|her|them|he's|she's|they're|hes|shes|theyre|someone|somebody|a man|a woman|men|people|a gang|the gang)"
_PATTERNS = (
    r"\bhappening (?:right )?now\b",
    r"\bright now\b",
    r"\bhelp me\b",
    r"\bhelp+ !|\bhelp\s*!+",
    r"\bsave me\b",
    r"\bfollow(?:ing|ed)? me\b",
    r"\b(?:is|are|still|was|were)? ?follow(?:ing)? (?:me|us)\b",
    r"(?<!butter )(?<!bread )(?<!cheese )(?<!palette )\bknife\b",
    r"\b(?:knives|guns?|weapons?|machete|blade|firearm|stabb(?:ed|ing)|shot at|acid)\b",
    r"\b(?:going to|gonna|will|wants? to|trying to|tried to|threaten(?:ed|ing|s)? to) "
    r"(?:hurt|kill|stab|shoot|attack|beat|burn|rape)\b",
    r"\boutside (?:my|the|our) (?:door|house|flat|home|window|room|building)\b",
    rf"\b{_WHO} (?:is |are |'s |'re )?(?:still )?(?:outside|here|downstairs|at the door|nearby|waiting for me|"
    r"coming back|coming for me|behind me)\b",
    r"\bcan'?t get away\b",
    r"\bcannot get away\b",
    r"\b(?:trapped|in danger|not safe|unsafe|scared for my life|bleeding)\b",
    r"\bbreak(?:ing)? in\b",
    r"\bcoming (?:back|for me|for us)\b",
    r"\bi'?m (?:scared|frightened|terrified)\b",
)
_DANGER = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def suggests_danger(text: str) -> bool:
    """True when the text sounds like danger now (a weapon, being followed, "help me", "outside my door")."""
    return bool(text) and _DANGER.search(text.replace("’", "'")) is not None
