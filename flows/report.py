"""The hate crime reporting conversation, declared as data for `flows.engine`. No I/O.

The order is the cognitive interview's (DESIGN.md): welcome, safety (-> emergency), role, then the story in
the person's own words (free recall first), then what, why, when, where, again, who did it, harm, witnesses,
evidence, support, contact, consent, review, done. Words typed at a question they do not answer join the
story (the flow's `account`), and the person is told so. Every question can be skipped; the words people
see live in `flows/messages/<locale>.toml`, the words the bot understands in `flows/vocab/<locale>/`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import cache
from typing import Any

from flows import access, languages, references, support, vocab
from flows.contact import email_address, phone_number
from flows.danger import assess
from flows.dates import looks_like_a_date, parse_when
from flows.engine import SAID, Earlier, Flow, Given, Go, Parsed, Say, Step, Told, When, answer_is, choice_of
from flows.types import (
    ContactDetails,
    Draft,
    EarlierReport,
    FlowContext,
    Harm,
    Media,
    Offender,
    ReportFields,
    SupportService,
)

ROLES = ("victim", "witness", "someone_else", "organisation", "helper")
# Someone helping another person to report (a community champion, a support worker, a third-party
# reporting centre): who should be contacted about the report.
HELPER_CONTACTS = ("contact_person", "contact_helper", "contact_nobody")
KINDS = ("verbal", "physical", "property", "online", "harassment", "written", "other")
MOTIVATIONS = ("race", "religion", "sexual_orientation", "disability", "transgender", "other", "not_sure")
REPEATS = ("first", "before", "ongoing")
YES_NO_UNSURE = ("yes", "no", "not_sure")
TIMES = ("morning", "afternoon", "evening", "night")
CONTACTS = ("chat", "phone", "text", "email", "anonymous")
_BY_PHONE = ("phone", "text")  # ways that need a phone number (and ask if a message is safe)

# What "change an answer" offers at the review: group key -> the first step of that group.
GROUPS: Mapping[str, str] = {
    "role": "role",
    "story": "story",
    "what": "what",
    "why": "why",
    "when": "when",
    "where": "where",
    "again": "again",
    "offender": "offender",
    "harm": "harm_hurt",
    "witnesses": "witnesses",
    "evidence": "evidence",
    "support": "support",
    "contact": "contact",
    "consent": "consent",
}
_SUMMARY_CUT = 80
_STORY_CUT = 600  # their own words are shown whole at the review unless very long (a message holds 4,096)


# ----- answers ---------------------------------------------------------------------------------------------


def _option_key(oid: str, index: int, prefix: str) -> str:
    """Ids that are short plain ASCII travel as they are (as option keys), others by position."""
    ok = oid.isascii() and 0 < len(oid) <= 24 and oid.replace("-", "").replace("_", "").isalnum()
    return oid if ok and oid not in ("none", "done", "skip", "no_one") else f"{prefix}{index}"


def _partner_keys(ctx: FlowContext) -> list[tuple[str, str]]:
    """(option key, partner id)."""
    return [(_option_key(p.id, i, "p"), p.id) for i, p in enumerate(ctx.settings.partners, start=1)]


def _said(draft: Draft) -> str:
    """What the person wrote that may name a service: their account and the words typed at "why"."""
    return "\n".join(_parts(draft.answers.get("story")))


def _fitting(draft: Draft, ctx: FlowContext, services: Sequence[SupportService]) -> list[SupportService]:
    a = draft.answers
    strands = _codes(a.get("why"), MOTIVATIONS)
    role = _code(a.get("role"), ROLES)
    return support.fitting(services, strands, role, _said(draft), draft.locale, most=len(services))


def _offered_support(draft: Draft, ctx: FlowContext) -> list[tuple[str, SupportService]]:
    """(option key, service): the services that can contact the person, those fitting the report first."""
    every = support.referrals(ctx.settings.support)
    fit = [s for s in _fitting(draft, ctx, ctx.settings.support) if s in every]
    keys = {s.id: _option_key(s.id, i, "s") for i, s in enumerate(every, start=1)}
    return [(keys[s.id], s) for s in (*fit, *(s for s in every if s not in fit))]


def _support_options(draft: Draft, ctx: FlowContext) -> Sequence[tuple[str, str | None]]:
    options: list[tuple[str, str | None]] = [(key, s.name) for key, s in _offered_support(draft, ctx)]
    options.append(("no_one", None))
    return options


def _chosen_support(draft: Draft, ctx: FlowContext) -> SupportService | None:
    chosen = draft.answers.get("support_choice")
    if draft.answers.get("support") != "yes" or not isinstance(chosen, str):
        return None
    every = support.referrals(ctx.settings.support)
    keys = {_option_key(s.id, i, "s"): s for i, s in enumerate(every, start=1)}
    return keys.get(chosen)


_HAS_REFERRALS = When(
    "is_yes_and_a_service_can_contact",
    lambda value, ctx: value == "yes" and bool(support.referrals(ctx.settings.support)),
)


def _consent_options(_draft: Draft, ctx: FlowContext) -> Sequence[tuple[str, str | None]]:
    options: list[tuple[str, str | None]] = [
        (key, partner.name)
        for (key, _), partner in zip(_partner_keys(ctx), ctx.settings.partners, strict=True)
    ]
    options.append(("none", None))
    return options


def _has_partners(_value: Any, ctx: FlowContext) -> bool:
    return bool(ctx.settings.partners)


_HAS_PARTNERS = When("has_partners", _has_partners)
_CHANGE_CONSENT = When(
    "is_consent_with_partners", lambda value, ctx: value == "consent" and bool(ctx.settings.partners)
)


def _about_another(draft: Draft) -> bool:
    """Whether the person is telling us about what happened to someone else (not to themselves)."""
    return draft.answers.get("role") in ("witness", "someone_else", "organisation", "helper")


def _why_key(draft: Draft, _ctx: FlowContext) -> str:
    return "why.other" if _about_another(draft) else "why.ask"


def _recognise_key(draft: Draft, _ctx: FlowContext) -> str:
    return (
        "offender_recognise.other"
        if draft.answers.get("role") in ("someone_else", "helper")
        else "offender_recognise.ask"
    )


def _contact_key(draft: Draft, _ctx: FlowContext) -> str:
    a = draft.answers
    how = a.get("contact")
    detail = "contact_email" if how == "email" else "contact_phone"
    if how in (*_BY_PHONE, "email") and detail in a and a.get(detail) is None:
        return "contact.empty"  # they chose a way and gave nothing to reach them by
    if a.get("no_calls"):
        return "contact.no_calls"
    return "contact.after_support" if a.get("support") == "yes" else "contact.ask"


def _contact_options(draft: Draft, _ctx: FlowContext) -> Sequence[tuple[str, str | None]]:
    """The ways to contact the person; no phone calls for someone who said the phone is hard."""
    calls = not draft.answers.get("no_calls")
    return [(key, None) for key in CONTACTS if calls or key != "phone"]


@cache
def _time_patterns(locale: str) -> tuple[re.Pattern[str], ...]:
    table = vocab.table(locale, "contact")["safe_times"]
    return tuple(re.compile(str(p), re.IGNORECASE) for p in table["patterns"])


def _safe_time_said(text: str, key: str, draft: Draft, _ctx: FlowContext) -> None:
    """ "phone me after 6": the way (phone) and, from the same words, when it is safe ("after 6")."""
    if key not in (*_BY_PHONE, "email"):
        return
    found = [m.group(0).strip() for p in _time_patterns(draft.locale) for m in p.finditer(text)]
    if found:
        draft.answers["contact_times"] = ", ".join(dict.fromkeys(found))[:200]


def _phone(text: str, _draft: Draft, _ctx: FlowContext) -> Parsed:
    number = phone_number(text)
    return Parsed(value=number) if number else Parsed(error="contact_phone.bad")


def _email(text: str, _draft: Draft, _ctx: FlowContext) -> Parsed:
    address = email_address(text) if "@" in text else None
    return Parsed(value=address) if address else Parsed(error="contact_email.bad")


_NOTHING_GIVEN = When("nothing_given", lambda value, _ctx: value is None)


def _store_when(key: str, _draft: Draft, ctx: FlowContext) -> dict[str, Any]:
    day = {"today": ctx.today, "yesterday": ctx.today - timedelta(days=1)}.get(key)
    return {"choice": key, "date": day.isoformat() if day else None}


def _typed_date(unclear: str) -> Any:
    def parse(text: str, draft: Draft, ctx: FlowContext) -> Parsed:
        found = parse_when(text, ctx.today, draft.locale)
        if found.value is None:
            if found.error == "future":
                return Parsed(error="when_date.future")
            return Parsed(error=unclear, attempt=looks_like_a_date(text, draft.locale))
        value = {"choice": "typed", "date": found.value.isoformat(), "text": text.strip()[:200]}
        if found.part is not None:
            value["part"] = found.part
        return Parsed(value=value)

    return parse


def _without_part(value: Any, _ctx: FlowContext) -> bool:
    """The date is known but not the part of the day ("yesterday evening" needs no time question)."""
    return choice_of(value) in ("today", "yesterday", "typed") and not _dict(value).get("part")


_NEEDS_TIME = When("needs_time", _without_part)


def _story_choice(key: str, draft: Draft, _ctx: FlowContext) -> str:
    """Changing their words: "write it again" replaces them with what they send next; "add" keeps them."""
    draft.pending["replace"] = key == "replace"
    return key


def _typed_time(text: str, _draft: Draft, _ctx: FlowContext) -> Parsed:
    return Parsed(value={"choice": "typed", "text": text.strip()[:200]})


def _typed_place(text: str, _draft: Draft, _ctx: FlowContext) -> Parsed:
    return Parsed(value={"text": text.strip()[:1000]})


def _store_place(key: str, _draft: Draft, _ctx: FlowContext) -> dict[str, Any]:
    return {"online": True} if key == "web" else {"choice": key}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _code(value: Any, allowed: Sequence[str]) -> str | None:
    return value if isinstance(value, str) and value in allowed else None


def _codes(value: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    return tuple(k for k in allowed if isinstance(value, list) and k in value)


def _date(raw: Any) -> date | None:
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def _shown(key: Any, say: Say | None) -> str:
    return say(f"option.{key}") if say else str(key)


def _day_said(answers: Mapping[str, Any], say: Say | None) -> tuple[date | None, str]:
    """The date, and the words for it: what was typed, or the option's label."""
    when = answers.get("when")
    choice = choice_of(when)
    if choice == "date":
        typed = _dict(answers.get("when_date"))
        return _date(typed.get("date")), str(typed.get("text") or "")
    if not isinstance(when, dict):
        return None, ""
    if choice == "typed":
        return _date(when.get("date")), str(when.get("text") or "")
    shown = _shown(choice, say) if choice in ("today", "yesterday", "not_sure") else ""
    return _date(when.get("date")), shown


def _time_said(answers: Mapping[str, Any], say: Say | None) -> str:
    """The part of the day: named with the date ("yesterday evening"), picked, or typed."""
    choice = choice_of(answers.get("when"))
    if choice == "not_sure":
        return ""
    if _dict(answers.get("when_date") if choice == "date" else answers.get("when")).get("part"):
        return ""  # said with the date ("yesterday evening"): shown once, in their words
    time = answers.get("when_time")
    if isinstance(time, dict):
        return str(time.get("text") or "")
    return _shown(time, say) if time in TIMES else ""


def _when(answers: Mapping[str, Any], say: Say | None) -> tuple[date | None, str | None]:
    """(date, what was said about when), from the when / when_date / when_time answers."""
    day, said = _day_said(answers, say)
    text = ", ".join(part for part in (said, _time_said(answers, say)) if part)
    return day, text or None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _parts(value: Any) -> list[str]:
    return [str(part) for part in value] if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, float | int) and not isinstance(value, bool) else None


def _offender(a: Mapping[str, Any]) -> Offender | None:
    known = _code(a.get("offender_known"), YES_NO_UNSURE)
    recognise = None if known == "yes" else _code(a.get("offender_recognise"), YES_NO_UNSURE)
    offender = Offender(description=_text(a.get("offender")), known=known, recognise=recognise)
    return offender if offender != Offender() else None


def _harm(a: Mapping[str, Any]) -> Harm | None:
    hurt = _code(a.get("harm_hurt"), YES_NO_UNSURE)
    harm = Harm(
        hurt=hurt,
        needs_help_now=_code(a.get("harm_now"), ("yes", "no")) if hurt == "yes" else None,
        property_damaged=_code(a.get("harm_property"), YES_NO_UNSURE),
    )
    return harm if harm != Harm() else None


def _contact(a: Mapping[str, Any]) -> ContactDetails | None:
    """How to reach the person; None (anonymous) unless the way they chose can really be used."""
    how = a.get("contact")
    no_calls = bool(a.get("no_calls"))
    if how == "chat":
        return ContactDetails(in_chat=True, by="chat", no_calls=no_calls)
    phone = _text(a.get("contact_phone")) if how in _BY_PHONE else None
    email = _text(a.get("contact_email")) if how == "email" else None
    if not (phone or email):
        return None
    return ContactDetails(
        name=_text(a.get("contact_name")),
        phone=phone,
        email=email,
        safe_times=_text(a.get("contact_times")),
        notes=_text(a.get("contact_notes")),
        by=str(how),
        leave_message=_code(a.get("contact_message"), ("yes", "no")) if phone else None,
        no_calls=no_calls or how == "text",
    )


def _share(draft: Draft, ctx: FlowContext) -> tuple[str, ...]:
    """The partners they picked, and the support service they chose to contact them."""
    a = draft.answers
    ids = dict(_partner_keys(ctx))
    chosen = a.get("consent") if ctx.settings.partners else None
    shared = [ids[k] for k in ids if isinstance(chosen, list) and k in chosen]
    service = _chosen_support(draft, ctx)
    if service is not None and service.id not in shared:
        shared.append(service.id)
    return tuple(shared)


def build_report(draft: Draft, ctx: FlowContext) -> ReportFields:
    """The submitted report, from the answers: codes for choices, the person's own words for text."""
    a = draft.answers
    role = _code(a.get("role"), ROLES)
    occurred_on, occurred_text = _when(a, None)
    place = _dict(a.get("where"))
    evidence = tuple(
        Media(ref=str(m["ref"]), content_type=m.get("content_type"))
        for m in a.get("evidence") or []
        if isinstance(m, dict) and m.get("ref")
    )
    contact = _contact(a)
    knows = _code(a.get("someone_else_knows"), YES_NO_UNSURE)
    return ReportFields(
        role=role,
        organisation=_organisation(a, role),
        someone_else_knows=knows if role == "someone_else" else None,
        incident_types=_codes(a.get("what"), KINDS),
        motivations=_codes(a.get("why"), MOTIVATIONS),
        description="\n\n".join(_parts(a.get("story"))) or None,
        occurred_on=occurred_on,
        occurred_at_text=occurred_text,
        location_text="online" if place.get("online") else _text(place.get("text")),
        latitude=_number(place.get("latitude")),
        longitude=_number(place.get("longitude")),
        repeat=_code(a.get("again"), REPEATS),
        offender=_offender(a),
        injuries=_harm(a),
        witnesses=_code(a.get("witnesses"), YES_NO_UNSURE),
        evidence=evidence,
        support_requested={"yes": True, "no": False}.get(str(a.get("support"))),
        anonymous=contact is None,
        contact=contact,
        share_with=_share(draft, ctx),
        linked_to=_linked(a.get("linked_to")),
        language=draft.locale,
        helper_agreed=_code(a.get("helper_agreed"), ("yes", "no")) if role == "helper" else None,
        helper_contact=_code(a.get("helper_contact"), HELPER_CONTACTS) if role == "helper" else None,
    )


def _organisation(a: Mapping[str, Any], role: str | None) -> str | None:
    """The organisation a report is made for, or that the helper is with."""
    key = {"organisation": "org_name", "helper": "helper_org"}.get(str(role))
    return _text(a.get(key)) if key else None


def _linked(value: Any) -> str | None:
    return value if isinstance(value, str) and references.is_reference(value) else None


# ----- what the person sees --------------------------------------------------------------------------------


def _cut(text: str, most: int = _SUMMARY_CUT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _labels(value: Any, say: Say) -> str | None:
    known = REPORT_FLOW.message_keys()
    if isinstance(value, list) and value:
        found = [say(f"option.{k}") for k in value if isinstance(k, str) and f"option.{k}" in known]
        return ", ".join(found) or None
    if isinstance(value, str) and f"option.{value}" in known:
        return str(say(f"option.{value}"))
    return None


def _where_shown(place: Any, say: Say) -> str | None:
    place = _dict(place)
    if place.get("online"):
        return str(say("option.web"))
    if place.get("text"):
        return _cut(str(place["text"]))
    if "latitude" in place:
        return str(say("review.shared_location"))
    return None


def _consent_shown(draft: Draft, ctx: FlowContext, say: Say) -> str:
    names = dict(_consent_options(draft, ctx)) if ctx.settings.partners else {}
    chosen = _list(draft.answers.get("consent"))
    shown = [str(names[k]) for k in names if k in chosen and k != "none"]
    service = _chosen_support(draft, ctx)
    if service is not None and service.name not in shown:
        shown.append(service.name)
    return ", ".join(shown) or str(say("option.none"))


def _contact_shown(a: Mapping[str, Any], say: Say) -> str | None:
    contact = _labels(a.get("contact"), say)
    reached = _contact(a)
    if contact and reached is not None and not reached.in_chat:
        extra = [reached.name, reached.phone, reached.email]
        contact = ", ".join([contact, *(_cut(str(e)) for e in extra if e)])
    elif contact and a.get("contact") != "anonymous" and reached is None:
        contact = str(say("option.anonymous"))
    return contact


def _role_shown(a: Mapping[str, Any], say: Say) -> str | None:
    role = _labels(a.get("role"), say)
    name = _organisation(a, _code(a.get("role"), ROLES))
    return f"{role} ({_cut(name)})" if role and name else role


def _summary(draft: Draft, ctx: FlowContext, say: Say) -> Mapping[str, object]:
    """One line per answered group, then one line naming the groups that were skipped."""
    a = draft.answers
    story = " / ".join(_parts(a.get("story")))  # the pieces they sent, told apart (stored: paragraphs)
    files = len(a.get("evidence") or [])
    report = build_report(draft, ctx)
    rows: list[tuple[str, str, str | None]] = [
        ("role", "role", _role_shown(a, say)),
        *_role_rows(report, say),
        ("story", "story", _cut(story, _STORY_CUT) if story else None),
        ("what", "what", _labels(a.get("what"), say)),
        ("why", "why", _labels(a.get("why"), say)),
        ("when", "when", _when_shown(a, say, draft.locale)),
        ("where", "where", _where_shown(a.get("where"), say)),
        ("again", "again", _answer_shown(a, "again", say)),
        ("offender", "offender", _cut(str(a["offender"])) if _text(a.get("offender")) else None),
        *_offender_rows(a, report.offender, say),
        ("harm", "harm", _answer_shown(a, "harm_hurt", say)),
        ("harm", "harm_now", _answer_shown(a, "harm_now", say) if _needs_help(report) else None),
        ("harm", "damage", _answer_shown(a, "harm_property", say)),
        ("witnesses", "witnesses", _answer_shown(a, "witnesses", say)),
        ("evidence", "evidence", say("review.files", count=files) if files else None),
        ("support", "support", _support_shown(draft, ctx, say)),
        ("contact", "contact", _contact_shown(a, say)),
        *_contact_rows(report.contact, say),
        ("consent", "consent", _consent_shown(draft, ctx, say)),
    ]
    return {"summary": _lines(rows, say)}


def _answer_shown(a: Mapping[str, Any], step: str, say: Say) -> str | None:
    """The option picked, with the person's own words when they said more ("Yes. You said: a lady saw it")."""
    shown = _labels(a.get(step), say)
    said = _dict(a.get(SAID)).get(step)
    if shown and isinstance(said, str) and said:
        return say("review.said", value=shown, said=_cut(said))
    return shown


def _needs_help(report: ReportFields) -> bool:
    return report.injuries is not None and report.injuries.needs_help_now is not None


def _role_rows(report: ReportFields, say: Say) -> list[tuple[str, str, str | None]]:
    """For someone else: do they know; for a helper: did the person agree, and whom to contact."""
    return [
        ("role", "someone_else_knows", _labels(report.someone_else_knows, say)),
        ("role", "helper_agreed", _labels(report.helper_agreed, say)),
        ("role", "helper_contact", _labels(report.helper_contact, say)),
    ]


def _offender_rows(
    a: Mapping[str, Any], offender: Offender | None, say: Say
) -> list[tuple[str, str, str | None]]:
    """Do they know who it was; would they know them again (asked only if not known)."""
    known = _answer_shown(a, "offender_known", say) if offender and offender.known else None
    again = _answer_shown(a, "offender_recognise", say) if offender and offender.recognise else None
    return [("offender", "offender_known", known), ("offender", "offender_recognise", again)]


def _contact_rows(contact: ContactDetails | None, say: Say) -> list[tuple[str, str, str | None]]:
    """When it is safe to contact them, whether a message may be left, what makes contact hard."""
    if contact is None:
        return []
    return [
        ("contact", "contact_times", _cut(contact.safe_times) if contact.safe_times else None),
        ("contact", "contact_message", _labels(contact.leave_message, say)),
        ("contact", "contact_notes", _cut(contact.notes) if contact.notes else None),
    ]


def _lines(rows: Sequence[tuple[str, str, str | None]], say: Say) -> str:
    lines = [say(f"review.line.{line}", value=value) for _, line, value in rows if value]
    answered = {group for group, _, value in rows if value}
    skipped = [say(f"option.{group}") for group in GROUPS if group not in answered]
    if skipped:
        lines.append(say("review.line.skipped", value=", ".join(skipped)))
    return "\n".join(lines)


def _support_shown(draft: Draft, ctx: FlowContext, say: Say) -> str | None:
    shown = _labels(draft.answers.get("support"), say)
    service = _chosen_support(draft, ctx)
    return f"{shown}, {service.name}" if shown and service is not None else shown


def _when_shown(answers: Mapping[str, Any], say: Say, locale: str) -> str | None:
    """`17/03/2026 (Yesterday), Evening`: the date we understood, written as the person's language writes
    dates ("17.03.2026" in Polish), then the words used if they differ."""
    day, said = _when(answers, say)
    parts = [p for p in (said or "").split(", ") if p]
    if day is None:
        return ", ".join(parts) or None
    shown = languages.show_date(day, locale)
    if parts and parts[0] != shown and choice_of(answers.get("when")) != "not_sure":
        shown = f"{shown} ({parts[0]})"
    return ", ".join([shown, *parts[1:]])


def _welcome_fields(_draft: Draft, ctx: FlowContext, _say: Say) -> Mapping[str, object]:
    return {"service_name": ctx.settings.service_name, "operator": ctx.settings.operator}


def _consent_fields(_draft: Draft, ctx: FlowContext, say: Say) -> Mapping[str, object]:
    lines = [say("consent.partner", name=p.name, does=p.does) for p in ctx.settings.partners]
    return {"partners": "\n".join(lines)}


def _record_fields(draft: Draft, ctx: FlowContext, _say: Say) -> Mapping[str, object]:
    chosen = _chosen_support(draft, ctx)
    return {"operator": ctx.settings.operator, "service": chosen.name if chosen else ""}


def _record_key(draft: Draft, ctx: FlowContext) -> str:
    """ "Nobody else gets it", unless the person picked a support service: then only that service."""
    return "record_only.support" if _chosen_support(draft, ctx) is not None else "record_only.ask"


def finish(draft: Draft, ctx: FlowContext, say: Say) -> list[str]:
    """After sending, one short calm message: the reference, what happens next, the support service they
    chose, 101 and 999, the secret code; then the support services that fit, if any. Nothing has reached
    anyone yet: staff pass it on."""
    report = build_report(draft, ctx)
    shared = bool(report.share_with)
    parts = [
        say("done.sent" if shared else "done.saved", reference=ctx.reference, operator=ctx.settings.operator),
        say("done.next", next_steps=ctx.settings.next_steps, reference=ctx.reference),
    ]
    service = _chosen_support(draft, ctx)
    if service is not None:
        key = "done.support_chosen" if report.contact is not None else "done.support_no_contact"
        parts.append(say(key, name=service.name))
    parts.append(say("done.police" if shared else "done.police_not_told"))
    if ctx.passphrase:
        parts.append(say("done.code", code=ctx.passphrase, reference=ctx.reference))
    texts = ["\n\n".join(parts)]
    fit = _fitting(draft, ctx, ctx.settings.support)[: support.SHOWN_MOST]
    if fit:
        lines = [say("done.support_line", name=s.name, for_whom=s.for_whom, contact=s.contact) for s in fit]
        texts.append(say("done.support", services="\n".join(lines)))
    return texts


# ----- a report in a series: the earlier report's answers, shown and reused ------------------------------

# Answers a new report in a series takes from the earlier one, and drops again if the person says they
# are not right any more.
_REUSED = (
    "role",
    "org_name",
    "someone_else_knows",
    "helper_org",
    "helper_agreed",
    "helper_contact",
    "offender",
    "offender_known",
    "offender_recognise",
    "contact",
    "contact_name",
    "contact_phone",
    "contact_email",
    "contact_times",
    "contact_message",
    "contact_notes",
    "no_calls",
    "consent",
    "again",
    "reused",
)


def reuse(draft: Draft, earlier: EarlierReport, ctx: FlowContext) -> None:
    """Put the earlier report's answers about the person (who, who did it, contact, consent) in the draft,
    as if given again; `linked_check` shows them and asks "is this still right?" before anything is sent."""
    a = draft.answers
    _reuse_role(a, earlier)
    offender = earlier.offender
    if offender is not None:
        a.update(offender=offender.description, offender_known=offender.known)
        a["offender_recognise"] = offender.recognise
    _reuse_contact(a, earlier.contact)
    if ctx.settings.partners:
        keys = [key for key, pid in _partner_keys(ctx) if pid in earlier.share_with]
        a["consent"] = keys or ["none"]
    a["again"] = "before"
    a["reused"] = True


def _reuse_role(a: dict[str, Any], earlier: EarlierReport) -> None:
    if earlier.role not in ROLES:
        return
    a["role"] = earlier.role
    if earlier.role in ("organisation", "helper") and earlier.organisation:
        a["org_name" if earlier.role == "organisation" else "helper_org"] = earlier.organisation
    if earlier.role == "helper":
        a.update(helper_agreed=earlier.helper_agreed, helper_contact=earlier.helper_contact)
    if earlier.role == "someone_else" and earlier.someone_else_knows in YES_NO_UNSURE:
        a["someone_else_knows"] = earlier.someone_else_knows


def _reuse_contact(a: dict[str, Any], contact: ContactDetails | None) -> None:
    if contact is None:
        a["contact"] = "anonymous"
        return
    if contact.in_chat or contact.by == "chat":
        a["contact"] = "chat"
    else:
        a["contact"] = contact.by or ("email" if contact.email else "phone")
        a.update(contact_name=contact.name, contact_phone=contact.phone, contact_email=contact.email)
        a.update(contact_times=contact.safe_times, contact_notes=contact.notes)
        a["contact_message"] = contact.leave_message
    if contact.no_calls:
        a["no_calls"] = True


def _linked_choice(key: str, draft: Draft, _ctx: FlowContext) -> str:
    """ "No, change them": the earlier answers are dropped, and the questions asked as for a new report."""
    if key == "change":
        for name in _REUSED:
            draft.answers.pop(name, None)
    return key


def _reused_fields(draft: Draft, ctx: FlowContext, say: Say) -> Mapping[str, object]:
    a = draft.answers
    rows = [
        ("role", _role_shown(a, say)),
        ("offender", _cut(str(a["offender"])) if _text(a.get("offender")) else None),
        ("contact", _contact_shown(a, say)),
        ("consent", _consent_shown(draft, ctx, say) if ctx.settings.partners else None),
    ]
    lines = [say(f"review.line.{line}", value=value) for line, value in rows if value]
    return {"reference": a.get("linked_to") or "", "summary": "\n".join(lines)}


_REUSING = Earlier("linked_check", "yes")


# ----- the flow --------------------------------------------------------------------------------------------

_REVIEW_LINES = tuple(f"review.line.{group}" for group in GROUPS)
_MORE_LINES = tuple(
    f"review.line.{step}"
    for step in (
        "someone_else_knows",
        "helper_agreed",
        "helper_contact",
        "offender_known",
        "offender_recognise",
        "harm_now",
        "contact_times",
        "contact_message",
        "contact_notes",
    )
)

STEPS: tuple[Step, ...] = (
    Step(
        "welcome",
        options=("continue",),
        go=(Go("safety"),),
        offer_skip=False,
        fields=_welcome_fields,
        any_text=True,
    ),
    Step(
        "safety",
        options=YES_NO_UNSURE,
        go=(Go("emergency", answer_is("yes", "not_sure")), Go("linked_check", Given("reused")), Go("role")),
    ),
    Step(
        "emergency",
        options=("safe", "stop"),
        go=(Go("linked_check", Given("reused")), Go("role")),
        in_history=False,
        returns=True,
        offer_skip=False,
        brief=True,
    ),
    Step(
        "linked_check",
        options=("yes", "change"),
        go=(Go("story", answer_is("yes")), Go("role")),
        store=_linked_choice,
        fields=_reused_fields,
        skippable=False,
        offer_skip=False,
        keys=("review.line.role", "review.line.offender", "review.line.contact", "review.line.consent"),
    ),
    Step(
        "role",
        options=ROLES,
        go=(
            Go("someone_else_knows", answer_is("someone_else")),
            Go("org_name", answer_is("organisation")),
            Go("helper_org", answer_is("helper")),
            Go("story"),
        ),
        group="role",
    ),
    Step("org_name", kind="text", go=(Go("story"),), group="role"),
    Step("helper_org", kind="text", go=(Go("helper_agreed"),), group="role"),
    Step("helper_agreed", options=("yes", "no"), go=(Go("helper_contact"),), group="role"),
    Step("helper_contact", options=HELPER_CONTACTS, go=(Go("story"),), group="role"),
    Step("someone_else_knows", options=YES_NO_UNSURE, go=(Go("story"),), group="role"),
    Step("story", kind="story", go=(Go("what"),), group="story"),
    Step(
        "story_change",
        options=("replace", "add"),
        go=(Go("story"),),
        group="story",
        store=_story_choice,
        offer_skip=False,
    ),
    Step("what", kind="multi", options=KINDS, go=(Go("why"),), group="what", describes=True),
    Step(
        "why",
        kind="multi",
        options=MOTIVATIONS,
        describes=True,
        go=(Go("when"),),
        group="why",
        ask_key=_why_key,
        keys=("why.ask", "why.other"),
    ),
    Step(
        "when",
        options=("today", "yesterday", "date", "not_sure"),
        go=(
            Go("when_date", answer_is("date")),
            Go("when_time", _NEEDS_TIME),
            Go("where"),
        ),
        store=_store_when,
        parse=_typed_date("when.hint"),
        errors=("when.hint", "when_date.future"),
        group="when",
    ),
    Step(
        "when_date",
        kind="text",
        go=(Go("when_time", _NEEDS_TIME), Go("where")),
        parse=_typed_date("when_date.unclear"),
        errors=("when_date.unclear", "when_date.future"),
        group="when",
    ),
    Step("when_time", kind="text", options=TIMES, go=(Go("where"),), parse=_typed_time, group="when"),
    Step(
        "where",
        kind="text",
        options=("web",),
        go=(Go("harm_hurt", _REUSING), Go("again")),
        location=True,
        parse=_typed_place,
        store=_store_place,
        group="where",
    ),
    Step("again", options=REPEATS, go=(Go("offender"),), group="again", details=True),
    Step("offender", kind="text", go=(Go("offender_known"),), group="offender"),
    Step(
        "offender_known",
        options=YES_NO_UNSURE,
        details=True,
        # Someone writing for an organisation did not see them: "would you know them again" does not apply.
        go=(
            Go("harm_hurt", answer_is("yes")),
            Go("harm_hurt", Earlier("role", "organisation")),
            Go("offender_recognise"),
        ),
        group="offender",
    ),
    Step(
        "offender_recognise",
        options=YES_NO_UNSURE,
        details=True,
        go=(Go("harm_hurt"),),
        group="offender",
        ask_key=_recognise_key,
        keys=("offender_recognise.ask", "offender_recognise.other"),
    ),
    Step(
        "harm_hurt",
        options=YES_NO_UNSURE,
        details=True,
        go=(Go("harm_now", answer_is("yes")), Go("harm_property")),
        group="harm",
    ),
    Step(
        "harm_now",
        options=("yes", "no"),
        details=True,
        go=(Go("harm_property"),),
        notes={"yes": "harm_now.call_999"},
        group="harm",
    ),
    Step("harm_property", options=YES_NO_UNSURE, go=(Go("witnesses"),), group="harm", details=True),
    Step("witnesses", options=YES_NO_UNSURE, go=(Go("evidence"),), group="witnesses", details=True),
    Step("evidence", kind="media", go=(Go("review", _REUSING), Go("support")), group="evidence"),
    Step(
        "support",
        options=("yes", "no"),
        go=(Go("support_choice", _HAS_REFERRALS), Go("contact")),
        group="support",
    ),
    Step(
        "support_choice",
        options=("no_one",),
        dynamic_options=_support_options,
        go=(Go("contact"),),
        group="support",
    ),
    Step(
        "contact",
        options=CONTACTS,
        dynamic_options=_contact_options,
        also=_safe_time_said,
        skip_as="anonymous",  # skip is "don't contact me", with the same honest note
        go=(
            Go("contact_name", answer_is(*_BY_PHONE, "email")),
            Go("consent", _HAS_PARTNERS),
            Go("record_only"),
        ),
        notes={"anonymous": "contact.anonymous_note", "chat": "contact.chat_note"},
        group="contact",
        ask_key=_contact_key,
        keys=("contact.ask", "contact.after_support", "contact.empty", "contact.no_calls"),
    ),
    Step(
        "contact_name",
        kind="text",
        go=(Go("contact_email", Earlier("contact", "email")), Go("contact_phone")),
        group="contact",
    ),
    Step(
        "contact_phone",
        kind="text",
        # Nothing to reach them by: back to "how would you like us to contact you?", never a report
        # that looks contactable and is not.
        go=(
            Go("contact", _NOTHING_GIVEN),
            Go("contact_message", Given("contact_times")),
            Go("contact_times"),
        ),
        parse=_phone,
        errors=("contact_phone.bad",),
        group="contact",
    ),
    Step(
        "contact_email",
        kind="text",
        go=(Go("contact", _NOTHING_GIVEN), Go("contact_notes", Given("contact_times")), Go("contact_times")),
        parse=_email,
        errors=("contact_email.bad",),
        group="contact",
    ),
    Step(
        "contact_times",
        kind="text",
        go=(Go("contact_message", Earlier("contact", *_BY_PHONE)), Go("contact_notes")),
        group="contact",
    ),
    Step("contact_message", options=("yes", "no"), go=(Go("contact_notes"),), group="contact"),
    Step(
        "contact_notes",
        kind="text",
        go=(Go("consent", _HAS_PARTNERS), Go("record_only")),
        group="contact",
    ),
    Step(
        "consent",
        kind="multi",
        options=("none",),
        dynamic_options=_consent_options,
        exclusive=("none",),
        everything="all",
        fields=_consent_fields,
        go=(Go("review"),),
        keys=("consent.partner",),
        group="consent",
    ),
    Step(
        "record_only",
        options=("continue",),
        go=(Go("review"),),
        fields=_record_fields,
        ask_key=_record_key,
        keys=("record_only.ask", "record_only.support", "record_only.police"),
        declines={"police": "record_only.police"},
        offer_skip=False,
        group="consent",
        any_text=True,
        account_words=4,  # "only the police" here is not part of what happened
    ),
    Step(
        "review",
        options=("send", "change", "delete"),
        go=(Go("done", answer_is("send")), Go("review_change", answer_is("change")), Go("review")),
        skippable=False,
        fields=_summary,
        declines={"police": "review.police"},
        keys=(
            "review.police",
            *_REVIEW_LINES,
            *_MORE_LINES,
            "review.said",
            "review.line.damage",
            "review.line.skipped",
            "review.files",
            "review.shared_location",
        ),
        brief=True,
    ),
    Step(
        "review_change",
        options=(*GROUPS, "summary"),
        go=(
            Go("story_change", Told("story", "story")),
            *(Go(first, answer_is(group)) for group, first in GROUPS.items() if group != "consent"),
            Go("consent", _CHANGE_CONSENT),
            Go("record_only", answer_is("consent")),
            Go("review"),
        ),
        offer_skip=False,
    ),
    Step(
        "resume",
        options=("continue", "restart"),
        go=(Go("welcome"),),
        in_history=False,
        offer_skip=False,
    ),
)

REPORT_FLOW = Flow(
    name="Report a hate crime",
    steps=STEPS,
    first="welcome",
    emergency="emergency",
    resume="resume",
    review="review",
    change="review_change",
    final="done",
    submit=build_report,
    finish=finish,
    alarm=assess,
    aside=access.assess,
    account="story",
    reuse=reuse,
    reuse_before="role",
    keys=(
        "access.no_calls",
        "done.support_chosen",
        "done.support_no_contact",
        "done.sent",
        "done.saved",
        "done.next",
        "done.police",
        "done.police_not_told",
        "done.support",
        "done.support_line",
        "done.code",
    ),
)
