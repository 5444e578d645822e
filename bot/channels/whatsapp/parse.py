"""Inbound: Twilio's form fields to the neutral `Inbound` of the service's one step.

ProfileName and WaId are never read; media are https references here (the step swaps them for evidence-store
references and the delivery loop downloads them: bot/fetch.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from flows.types import Inbound, Location, Media

MAX_MEDIA = 10  # Twilio sends at most 10 media items with one message
_OPTION_KEY = re.compile(r"^[a-z0-9_]{1,64}$")


def inbound_from_form(form: Mapping[str, str]) -> Inbound:
    """Twilio's form fields to one neutral `Inbound` (ProfileName and WaId are never read)."""
    text = str(form.get("Body") or "").strip()
    payload = str(form.get("ButtonPayload") or "").strip()
    if not text:
        text = str(form.get("ButtonText") or "").strip()
    option = payload if _OPTION_KEY.match(payload) else None
    return Inbound(text=text, option=option, location=_location(form), media=_media(form))


def _location(form: Mapping[str, str]) -> Location | None:
    raw_lat, raw_lon = form.get("Latitude"), form.get("Longitude")
    if not raw_lat or not raw_lon:
        return None
    point = _point(raw_lat, raw_lon)
    if point is None:
        return None
    parts = [str(form.get(k) or "").strip() for k in ("Label", "Address")]
    text = ", ".join(p for p in parts if p) or None
    return Location(latitude=point[0], longitude=point[1], text=text)


def _point(raw_lat: str, raw_lon: str) -> tuple[float, float] | None:
    """(latitude, longitude) when both are finite numbers on the globe, else None."""
    try:
        lat, lon = float(raw_lat), float(raw_lon)
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    return (lat, lon) if -90 <= lat <= 90 and -180 <= lon <= 180 else None


def _media(form: Mapping[str, str]) -> tuple[Media, ...]:
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError:
        return ()
    found = []
    for i in range(max(0, min(count, MAX_MEDIA))):
        url = str(form.get(f"MediaUrl{i}") or "")
        if url.startswith("https://"):
            found.append(Media(ref=url, content_type=form.get(f"MediaContentType{i}") or None))
    return tuple(found)
