"""The neutral message types at the boundary between channels, the service and the flows.

Channel adapters turn platform payloads into `Inbound` and `Outbound` into platform calls; the
service hands `Draft` + `Inbound` + `FlowContext` to a flow and stores what comes back in a
`StepResult`. Everything here is plain data that round-trips through JSON. No I/O, ever.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Location:
    """A place the person shared from their phone."""

    latitude: float
    longitude: float
    text: str | None = None  # an address or label, when the platform gives one


@dataclass(frozen=True, slots=True)
class Media:
    """A photo, video, voice note or file the person sent: a reference of the evidence store once the
    step has run (the channel gives the platform's file id or URL, which the step swaps; bot/app/evidence.py)."""

    ref: str  # "evidence:<hex>" or "web-upload:<hex>" (a Telegram file id or Twilio URL before the step)
    content_type: str | None = None  # "image/jpeg", "photo", "document", ...


@dataclass(frozen=True, slots=True)
class Inbound:
    """One thing the person sent. Exactly one of text / option / location / media / unsupported matters."""

    text: str = ""  # typed text, or the caption of a photo
    option: str | None = None  # an option key from a button press (Telegram callback data)
    location: Location | None = None
    media: tuple[Media, ...] = ()
    unsupported: str | None = None  # "sticker", "voice", "contact", ...: content the bot cannot read
    edited: bool = False  # the person edited an earlier message


@dataclass(frozen=True, slots=True)
class Option:
    """One answer the person can pick. `key` is stable and short (it travels as callback data)."""

    key: str
    label: str


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to the person. Channels that have no buttons show options as `N. Label` lines."""

    text: str
    options: tuple[Option, ...] = ()
    multi: bool = False  # several options may be picked; the option with key "done" finishes
    selected: tuple[str, ...] = ()  # multi only: the keys picked so far (shown with a tick)
    update: bool = False  # a multi-select toggle: channels that can edit the last question do so
    request_location: bool = False  # offer a "share my location" button where the channel has one
    clear_chat: bool = False  # quick exit: delete what the channel allows of this conversation
    # Quick exit where the channel deletes messages: the words instead of `text` when it could not delete
    # everything (nothing deleted, one, "{count}" messages); the channel picks after deleting.
    not_cleared: tuple[str, ...] = ()
    step: str = ""  # the step this message belongs to (logs and keyboards; never content)


@dataclass(frozen=True, slots=True)
class Partner:
    """An organisation that may receive a report, with the person's consent."""

    id: str
    name: str
    does: str  # what they do with a report, in plain words
    # The same partner in other languages (config's `[partners.pl]`): (locale, partner in that language).
    translated: tuple[tuple[str, Partner], ...] = ()


@dataclass(frozen=True, slots=True)
class SupportService:
    """A support service the bot can point people to (numbers come from config, not code).

    `strands` are the motivation keys it serves (race, religion, ...; empty: every report); `roles` the
    roles it serves (empty: every role). One that takes `referrals` can be chosen to contact the person:
    it then receives the report like a partner, under its `id`.
    """

    name: str
    for_whom: str
    contact: str
    id: str = ""
    strands: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    referrals: bool = False
    # The same service in other languages (config's `[support.pl]`): (locale, service in that language).
    translated: tuple[tuple[str, SupportService], ...] = ()


@dataclass(frozen=True, slots=True)
class FlowSettings:
    """What a deployment tells the flow about itself (from config)."""

    service_name: str = "Report Hate"
    operator: str = "a local hate crime partnership"
    next_steps: str = "A member of staff will read your report within 3 working days."
    partners: tuple[Partner, ...] = ()
    support: tuple[SupportService, ...] = ()
    resume_after_minutes: int = 30  # a draft idle longer than this asks "continue or start again?"
    # The languages offered, as catalog locales, in the order shown (config `[languages] enabled`).
    languages: tuple[str, ...] = ("en",)
    # These settings with the deployment's words in another language, where config gives them (operator,
    # partners, support services): (locale, settings). A language not here sees the words as written.
    translated: tuple[tuple[str, FlowSettings], ...] = ()

    def in_language(self, locale: str) -> FlowSettings:
        """The settings a person whose conversation is in `locale` sees."""
        for code, settings in self.translated:
            if code == locale:
                return settings
        return self


@dataclass(frozen=True, slots=True)
class FlowContext:
    """What the service knows about this step that the flow cannot find out itself (it does no I/O)."""

    now: datetime  # timezone-aware
    today: date  # the local (UK) date, for "today", "yesterday" and "no future dates"
    reference: str  # a fresh reference number, used only if this step submits a report
    # The secret code shown once beside the reference (made by the service with `secrets`, like the
    # reference); "" when this step cannot submit. With it, `status REFERENCE CODE` works from any chat.
    passphrase: str = ""
    channel: str = "console"  # "console" | "telegram" | "whatsapp"
    can_clear_chat: bool = False  # the channel can delete this conversation's messages
    settings: FlowSettings = field(default_factory=FlowSettings)
    # The enabled language the platform says the person uses (Telegram's language_code, the browser's
    # Accept-Language); None where it cannot be known (WhatsApp, the console): then the welcome offers them.
    language: str | None = None

    def in_language(self, locale: str) -> FlowContext:
        """This context with the deployment's words in `locale` (FlowSettings.in_language)."""
        settings = self.settings.in_language(locale)
        return self if settings is self.settings else replace(self, settings=settings)


def _copied(value: Any) -> Any:
    """A deep copy of JSON values (dicts, lists, tuples of str, numbers, bools and None)."""
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    return value


@dataclass(slots=True)
class Draft:
    """A conversation's saved state: the current step, the answers so far, and how we got here."""

    step: str = "start"
    answers: dict[str, Any] = field(default_factory=dict)
    history: list[str] = field(default_factory=list)  # steps asked before, for "back"
    pending: dict[str, Any] = field(default_factory=dict)  # work in progress inside one step
    locale: str = "en"
    last_active: str | None = None  # ISO 8601, set by the flow from ctx.now
    reasked: int = 0  # how many times in a row the current question was re-asked

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "answers": self.answers,
            "history": self.history,
            "pending": self.pending,
            "locale": self.locale,
            "last_active": self.last_active,
            "reasked": self.reasked,
        }

    def copy(self) -> Draft:
        """A deep copy (the draft holds JSON values only; `copy.deepcopy` cost a quarter of a flow step)."""
        return Draft(
            step=self.step,
            answers=_copied(self.answers),
            history=list(self.history),
            pending=_copied(self.pending),
            locale=self.locale,
            last_active=self.last_active,
            reasked=self.reasked,
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Draft:
        return cls(
            step=str(data.get("step", "start")),
            answers=dict(data.get("answers", {})),
            history=list(data.get("history", [])),
            pending=dict(data.get("pending", {})),
            locale=str(data.get("locale", "en")),
            last_active=data.get("last_active"),
            reasked=int(data.get("reasked", 0)),
        )


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """What the service found for `status <reference>`; None is passed when nothing was found."""

    reference: str
    status: str  # "new" | "in-progress" | "closed"
    submitted_on: date
    replies: tuple[str, ...] = ()  # staff replies sent to the reporter, oldest first
    # Staff replies were not looked at: the chat is not the report's own and no right code was given.
    withheld: bool = False


@dataclass(frozen=True, slots=True)
class ContactDetails:
    """How and when the person would like to be contacted. Only asked for when they want contact."""

    name: str | None = None
    phone: str | None = None
    email: str | None = None
    in_chat: bool = False  # contact me here, in this chat
    safe_times: str | None = None
    notes: str | None = None  # anything that makes contact difficult
    by: str | None = None  # "chat" | "phone" | "text" (text messages only) | "email"
    leave_message: str | None = None  # phone and text: is it safe to leave a message? "yes" | "no"
    no_calls: bool = False  # the person said phone calls are hard for them (deaf, can't speak)


@dataclass(frozen=True, slots=True)
class Offender:
    """Who did it: the person's description in their own words, and what they answered about knowing them."""

    description: str | None = None
    known: str | None = None  # "yes" | "no" | "not_sure": do they know who it was
    recognise: str | None = None  # "yes" | "no" | "not_sure": would they know them again (not asked if known)


@dataclass(frozen=True, slots=True)
class Harm:
    """What the person answered about harm: codes only."""

    hurt: str | None = None  # "yes" | "no" | "not_sure": was anyone hurt
    needs_help_now: str | None = None  # "yes" | "no": needed a doctor or ambulance then (asked if hurt)
    property_damaged: str | None = None  # "yes" | "no" | "not_sure"


@dataclass(frozen=True, slots=True)
class ReportFields:
    """A submitted report in the shape storage keeps and staff export (DESIGN.md export fields).

    Codes, not labels: role "victim" | "witness" | "someone_else" | "organisation"; repeat "first" |
    "before" | "ongoing"; kinds and motivations are the option keys of those steps.
    """

    role: str | None = None
    organisation: str | None = None  # the organisation's name, for reports made for an organisation
    someone_else_knows: str | None = None  # "yes" | "no" | "not_sure", for reports about someone else
    incident_types: tuple[str, ...] = ()
    motivations: tuple[str, ...] = ()
    description: str | None = None  # the story, in the person's own words
    occurred_on: date | None = None
    occurred_at_text: str | None = None  # what the person said about when ("last Tuesday, evening")
    location_text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    repeat: str | None = None
    offender: Offender | None = None
    injuries: Harm | None = None
    witnesses: str | None = None
    evidence: tuple[Media, ...] = ()
    support_requested: bool | None = None
    anonymous: bool = True
    contact: ContactDetails | None = None
    share_with: tuple[str, ...] = ()  # partner ids the person consented to; empty = record only
    linked_to: str | None = None  # the earlier report this one adds to (`add REFERENCE`), its reference
    language: str = "en"  # the language the person reported in (the catalog locale)
    # Someone helping another person to report (role "helper"): did that person agree ("yes" | "no"), and
    # who should be contacted ("contact_person" | "contact_helper" | "contact_nobody").
    helper_agreed: str | None = None
    helper_contact: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EarlierReport(ReportFields):
    """An earlier report that a new one in the same series may reuse the answers of (after the person says
    they are still right): its reference and its fields, of which the flow takes who reported it, who did
    it, how to contact them and who may see it (flows.report.reuse)."""

    reference: str


@dataclass(slots=True)
class StepResult:
    """What one step of a flow decided. The service stores it all in one transaction."""

    draft: Draft
    replies: list[Outbound]
    submit: ReportFields | None = None  # create this report under ctx.reference; the conversation ends
    erase: bool = False  # delete the draft and this conversation's transcript (stop, delete, exit)
    status_query: str | None = None  # the person asked `status <ref>`: look it up, then call status_reply
    status_code: str | None = None  # the secret code typed after the reference, if any (normalised)
    # `add <ref>`: check the person may add to it, then call link_reply; "" is "my last report from this chat"
    link_query: str | None = None
    link_code: str | None = None  # the secret code typed after that reference, if any (normalised)
