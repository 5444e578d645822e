"""Which support services fit a report: by its strands (motivations), its role and the person's words. No I/O.

The services are data from config (`[[support]]`, `FlowSettings.support`). What makes a service fit a
report, most specific first:

1. a service for some of the report's strands (Tell MAMA, CST, Galop), where the person's own words do
   not point to another service of the same strand ("hijab" points to Tell MAMA, so CST, also for
   religion, is left out; words per service id in `flows/vocab/<locale>/support.toml`);
2. a service for every strand (Stop Hate UK: the more strands a service serves, the less specific);
3. a service for every report (no strands: Victim Support).

Samaritans and Childline are listed with no strand that a report can have (`strands = ["self_harm"]`):
they are given when words suggest thoughts of self-harm (flows.danger), not by strand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from flows import understand
from flows.types import SupportService

SHOWN_MOST = 3


def _about(locale: str) -> dict[str, tuple[str, ...]]:
    return dict(understand.section_words(locale, "support", "about"))


def _spotted(text: str, services: Iterable[SupportService], locale: str) -> set[str]:
    """The ids of services whose words appear in what the person wrote."""
    about = _about(locale)
    phrases = {s.id: about.get(s.id, ()) for s in services if s.id}
    return set(understand.spot(text, phrases)) if text else set()


def fitting(
    services: Sequence[SupportService],
    strands: Sequence[str],
    role: str | None,
    said: str,
    locale: str,
    *,
    most: int = SHOWN_MOST,
) -> list[SupportService]:
    """The services that fit a report, most specific first, at most `most`.

    A service with words of its own (Tell MAMA, CST: both for religion) fits only when the person's words
    name it; one without (Galop) fits by strand alone.
    """
    wanted = set(strands) or {"not_sure"}
    about = _about(locale)
    spotted = _spotted(said, services, locale)
    ranked = [
        (rank, index, service)
        for index, service in enumerate(services)
        if (rank := _rank(service, wanted, role, spotted, about)) is not None
    ]
    ranked.sort(key=lambda item: (item[0], item[1]))
    return [service for _, _, service in ranked[:most]]


def _rank(
    service: SupportService,
    wanted: set[str],
    role: str | None,
    spotted: set[str],
    about: Mapping[str, object],
) -> int | None:
    """How specific a service is for this report (lower first), or None when it does not fit."""
    if service.roles and role is not None and role not in service.roles:
        return None
    if not service.strands:
        return 1000  # every report (Victim Support): last
    if not wanted & set(service.strands):
        return None
    if service.id in spotted:
        return 0  # named by their words (Tell MAMA for "hijab")
    return None if service.id in about else len(service.strands)


def referrals(services: Sequence[SupportService]) -> list[SupportService]:
    """The services that can be chosen to contact the person."""
    return [s for s in services if s.referrals and s.id]
