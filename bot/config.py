"""One typed configuration, loaded once at start: file, then environment overrides, then checks.

Where it comes from: `--config PATH`, else `$REPORTBOT_CONFIG`, else `./config.toml` when present, else
built-in defaults that run locally with nothing set up. Any key can be overridden from the environment
as `REPORTBOT_<SECTION>__<KEY>` (lists comma-separated). Every problem is reported as one line that names
the key (`ConfigError`), so a bad deployment fails at start and says where to look.

pydantic-settings does the reading and merging (the TOML file, then the environment over it) and pydantic
checks every value against the sections below; this module only finds the file, turns pydantic's errors
into our one-line messages, and makes the local key file. An error never quotes a secret's value.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import sys
import tomllib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass as plain_dataclass
from dataclasses import field, replace
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_type_hints
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ErrorDetails, PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.errors import ConfigError as ConfigError  # importers keep `from bot.config import ConfigError`
from flows import catalog, languages
from flows.types import FlowSettings, Partner, SupportService
from storage.maintenance import RECEIPT_KEEP

log = logging.getLogger(__name__)

V = TypeVar("V")

ENV_PREFIX = "REPORTBOT_"
# The longest web chat session: a quick exit's record (a receipt, kept RECEIPT_KEEP) must outlive it.
WEB_IDLE_MOST = int((RECEIPT_KEEP - timedelta(hours=1)).total_seconds() // 60)
KEY_FILE = "keys.toml"


# -- value checks: each failure is the problem in the words of the one-line error ------------------------


def _problem(text: str) -> PydanticCustomError:
    return PydanticCustomError("config", "{problem}", {"problem": text})


def _no_bool(kind: str) -> Callable[[Any], Any]:
    # pydantic reads `port = true` as 1; a switch where a number belongs is a mistake, not a number.
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise PydanticCustomError(kind, "a number, not true or false")
        return value

    return check


def _rule(ok: Callable[[Any], object], problem: str, *, empty_ok: bool = False) -> Callable[[V], V]:
    """A check of one value: `ok(value)`, else `problem` (which may show the value: `{value!r}`). With
    `empty_ok`, an empty text passes (a thing not set up). Every check below is one of these."""

    def check(value: V) -> V:
        if not (empty_ok and value == "") and not ok(value):
            raise _problem(problem.format(value=value))
        return value

    return check


def _at_least(low: int) -> Callable[[int], int]:
    return _rule(lambda value: value >= low, f"must be at least {low}")


def _comma_list(value: Any) -> Any:
    """The environment gives a list as one comma-separated string; so may the file."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _valid_fernet(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except Exception:
        return False
    return True


def _full(pattern: str) -> Callable[[str], object]:
    return re.compile(pattern).fullmatch


_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$").match
_ID_PROBLEM = "must be 1-32 lower-case letters, digits, - or _"

_above_zero = _rule(lambda value: value > 0, "must be more than 0")
_port = _rule(lambda value: 0 < value < 65536, "must be between 1 and 65535, not {value}")
_time_zone = _rule(_known_zone, "unknown time zone {value!r}")
_fernet_key = _rule(_valid_fernet, "is not a Fernet key (32 url-safe base64 bytes)")
_pseudonym_key = _rule(lambda v: len(v) >= 32, "must be at least 32 characters", empty_ok=True)
_database_url = _rule(
    lambda v: v.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")),
    "must start with sqlite+aiosqlite:// or postgresql+asyncpg://",
    empty_ok=True,
)
_webhook_secret = _rule(
    re.compile(r"^[A-Za-z0-9_-]{16,256}$").match,
    "must be 16-256 characters: letters, digits, _ or -",
    empty_ok=True,
)
_bot_token = _rule(
    re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$").match,
    "does not look like a BotFather token (digits:letters)",
    empty_ok=True,
)
_public_url = _rule(
    lambda v: v.startswith(("https://", "http://")), "must start with https://", empty_ok=True
)
_https_url = _rule(lambda v: v.startswith("https://"), "must start with https://")
_partner_id = _rule(_ID, _ID_PROBLEM)
_partner_id_if_set = _rule(_ID, _ID_PROBLEM, empty_ok=True)
_content_type = _rule(_full(r"[a-z]+/[a-z0-9.+-]+"), "must be a content type like image/jpeg, not {value!r}")
_origin = _rule(
    _full(r"https://[A-Za-z0-9.-]+(:\d{1,5})?"),
    "must be an origin like https://www.example.org, not {value!r}",
)
_media_type = _rule(_MEDIA_TYPES.__contains__, f"must be one of {', '.join(sorted(_MEDIA_TYPES))}")
_locale_name = _rule(
    _full(r"[a-z]{2,3}(_[A-Z]{2})?"), "must be a catalog's language code like pl or ro, not {value!r}"
)


Whole = Annotated[int, BeforeValidator(_no_bool("int_type"))]
Number = Annotated[float, BeforeValidator(_no_bool("float_type"))]
Count = Annotated[Whole, AfterValidator(_at_least(1))]
Days = Count
Bytes = Annotated[Whole, AfterValidator(_at_least(1024))]  # a size limit
Port = Annotated[Whole, AfterValidator(_port)]
# A list of values (in the environment, or the file, also one comma-separated string).
Listed = Annotated[tuple[V, ...], BeforeValidator(_comma_list)]
Filled = Annotated[
    str, Field(min_length=1), BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v)
]

# Never quoted in an error, whatever is wrong with them.
SECRET_KEYS = frozenset(
    {
        "database.url",  # may hold a password
        "security.encryption_keys",
        "security.pseudonym_key",
        "telegram.token",
        "telegram.webhook_secret",
        "whatsapp.auth_token",
    }
)

# -- the sections: one class per [table], every key with its default ------------------------------------

_SECTION = ConfigDict(extra="forbid", populate_by_name=True)


# -- the deployment's own words in other languages: `[service.pl]`, `[partners.pl]`, `[support.pl]` --------
# A table named by a catalog's language code, under a table with words people read, gives those words in
# that language; a key left out stays as written above it. They go under the table's `translated` field.

_LANGUAGE_TABLE = re.compile(r"[a-z]{2,3}")
_DIGITS = re.compile(r"\d+")


def _language_tables(data: Any) -> Any:
    """Move sub-tables named like a language code (`pl`) under `translated` (checked in `_check`)."""
    if not isinstance(data, dict):
        return data
    named = {k: v for k, v in data.items() if isinstance(v, dict) and _LANGUAGE_TABLE.fullmatch(k)}
    if not named:
        return data
    return {**{k: v for k, v in data.items() if k not in named}, "translated": named}


@dataclass(frozen=True, kw_only=True, config=_SECTION)
class ServiceWords:
    """`[service.<language>]`."""

    name: str = ""
    operator: str = ""
    next_steps: str = ""


@dataclass(frozen=True, kw_only=True, config=_SECTION)
class WhatsAppWords:
    """`[whatsapp.<language>]`: the approved template in that language."""

    followup_content_sid: str = ""


@dataclass(frozen=True, kw_only=True, config=_SECTION)
class PartnerWords:
    """`[partners.<language>]`, after a `[[partners]]` table."""

    name: str = ""
    does: str = ""


@dataclass(frozen=True, kw_only=True, config=_SECTION)
class SupportWords:
    """`[support.<language>]`, after a `[[support]]` table."""

    name: str = ""
    for_: str = Field(default="", alias="for")
    contact: str = ""


@dataclass(frozen=True, config=_SECTION)
class ServiceConfig:
    name: str = "Report Hate"
    operator: str = "a local hate crime partnership"
    next_steps: str = "A member of staff will read your report within 3 working days."
    data_dir: str = "data"
    draft_retention_days: Days = 30
    report_retention_days: Days = 2555  # 7 years, a common retention period for crime records
    resume_after_minutes: Days = 30
    timezone: Annotated[str, AfterValidator(_time_zone)] = "Europe/London"
    # After a staff reply, what the reporter writes within this many hours joins that report's record.
    reply_window_hours: Annotated[Whole, AfterValidator(_at_least(0))] = 72
    translated: dict[str, ServiceWords] = Field(default_factory=dict)  # [service.pl] ...

    _languages = model_validator(mode="before")(_language_tables)


@dataclass(frozen=True, config=_SECTION)
class ServerConfig:
    host: str = "127.0.0.1"
    port: Port = 8080
    workers: Count = 1
    max_body_bytes: Bytes = 1_000_000


@dataclass(frozen=True, config=_SECTION)
class DatabaseConfig:
    url: Annotated[str, AfterValidator(_database_url)] = ""  # empty: SQLite file under service.data_dir


@dataclass(frozen=True, config=_SECTION)
class SecurityConfig:
    # Fernet keys, newest first
    encryption_keys: Listed[Annotated[str, AfterValidator(_fernet_key)]] = ()
    pseudonym_key: Annotated[str, AfterValidator(_pseudonym_key)] = ""


@dataclass(frozen=True, config=_SECTION)
class TelegramConfig:
    token: Annotated[str, AfterValidator(_bot_token)] = ""
    webhook_secret: Annotated[str, AfterValidator(_webhook_secret)] = ""
    api_base_url: str = "https://api.telegram.org/bot"
    # https://host the webhook is reachable at (for set-webhook)
    public_url: Annotated[str, AfterValidator(_public_url)] = ""


@dataclass(frozen=True, config=_SECTION)
class WhatsAppConfig:
    account_sid: str = ""
    auth_token: str = ""
    # `from` in the file: the WhatsApp sender, e.g. whatsapp:+447700900000
    from_: str = Field(default="", alias="from")
    # https://host Twilio calls; the signature covers this, not the internal URL
    public_url: Annotated[str, AfterValidator(_public_url)] = ""
    followup_content_sid: str = ""  # approved template for staff replies after the 24-hour window
    translated: dict[str, WhatsAppWords] = Field(default_factory=dict)  # [whatsapp.pl] followup_content_sid

    _languages = model_validator(mode="before")(_language_tables)


# Files a person may send as evidence on Telegram or WhatsApp (photos, documents, videos, voice notes).
EVIDENCE_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "application/pdf",
    "video/mp4",
    "video/quicktime",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/amr",
)


@dataclass(frozen=True, config=_SECTION)
class LimitsConfig:
    messages_per_second: Annotated[Number, AfterValidator(_above_zero)] = 5.0  # per chat; faster ones wait
    window_minutes: Count = 10  # the volume window, per chat
    window_messages: Count = 200  # read and answered a window
    window_kept: Annotated[Whole, AfterValidator(_at_least(0))] = 100  # more kept unanswered (transcript)
    reports_per_hour: Count = 5  # new reports per sender
    # The size of one report's draft (docs/limits.md): far above what a person writes, low enough that one
    # chat's draft never slows another chat's step.
    story_characters: Count = 30_000  # also any one typed answer
    story_messages: Count = 300  # messages in the story
    evidence_items: Count = 50  # photos and files in one report
    # A file sent on Telegram or WhatsApp is downloaded (by the delivery loop) only up to this size and
    # of these types; anything else is listed in the report as not downloaded (storage/evidence.py).
    evidence_max_bytes: Bytes = 20_000_000
    evidence_types: Listed[Annotated[str, AfterValidator(_content_type)]] = EVIDENCE_TYPES
    # `status REFERENCE` look-ups that find nothing (or give a wrong code), per hour, before a lockout.
    status_failures_per_chat: Count = 10
    status_failures_total: Count = 300  # all chats together
    status_lockout_minutes: Count = 60


@dataclass(frozen=True, config=_SECTION)
class WebConfig:
    enabled: bool = True  # the web chat at /chat in `reportbot serve`
    # https://host/ the chat is reached at; https here makes the session cookie Secure
    public_url: Annotated[str, AfterValidator(_public_url)] = ""
    # Where quick exit sends the person (a neutral page)
    exit_url: Annotated[str, AfterValidator(_https_url)] = "https://www.bbc.co.uk/weather"
    # Sites allowed to show /chat/embed in an iframe (origins)
    embed_origins: Listed[Annotated[str, AfterValidator(_origin)]] = ()
    session_idle_minutes: Count = 30
    upload_max_bytes: Bytes = 5_000_000
    upload_types: Listed[Annotated[str, AfterValidator(_media_type)]] = (
        "image/jpeg",
        "image/png",
        "image/webp",
    )


@dataclass(frozen=True, config=_SECTION)
class LanguagesConfig:
    # The languages offered, in the order shown; empty: every catalog in flows/messages/ (English first).
    enabled: Listed[Annotated[str, AfterValidator(_locale_name)]] = ()

    def locales(self) -> tuple[str, ...]:
        return self.enabled or languages.shipped()


@dataclass(frozen=True, kw_only=True, config=_SECTION)
class PartnerTable:
    """One `[[partners]]` table."""

    id: Annotated[Filled, AfterValidator(_partner_id)]
    name: Filled
    does: Filled
    translated: dict[str, PartnerWords] = Field(default_factory=dict)  # [partners.pl] ...

    _languages = model_validator(mode="before")(_language_tables)


STRANDS = ("race", "religion", "sexual_orientation", "disability", "transgender", "other", "not_sure")
ROLES = ("victim", "witness", "someone_else", "organisation")
# Not a strand a report can have: a service given when words suggest thoughts of self-harm.
SELF_HARM = "self_harm"


def _one_of(allowed: tuple[str, ...]) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if value not in allowed:
                raise _problem(f"{value!r} is not one of {', '.join(allowed)}")
        return values

    return check


@dataclass(frozen=True, kw_only=True, config=_SECTION)
class SupportTable:
    """One `[[support]]` table."""

    name: Filled
    for_: Filled = Field(alias="for")
    contact: Filled
    # Needed when referrals = true: the id the report is shared under (exports: --partner ID).
    id: Annotated[str, AfterValidator(_partner_id_if_set)] = ""
    # The motivations it serves (empty: every report); see config.example.toml.
    strands: Annotated[Listed[str], AfterValidator(_one_of((*STRANDS, SELF_HARM)))] = ()
    roles: Annotated[Listed[str], AfterValidator(_one_of(ROLES))] = ()
    referrals: bool = False  # it agreed to contact people who choose it, and to receive their reports
    translated: dict[str, SupportWords] = Field(default_factory=dict)  # [support.pl] ...

    _languages = model_validator(mode="before")(_language_tables)


def _support_services(tables: tuple[SupportTable, ...]) -> tuple[SupportService, ...]:
    """`[[support]]` tables in the shape the flow uses."""
    return tuple(
        SupportService(
            name=s.name,
            for_whom=s.for_,
            contact=s.contact,
            id=s.id,
            strands=s.strands,
            roles=s.roles,
            referrals=s.referrals,
            translated=tuple(
                (
                    code,
                    SupportService(
                        name=w.name or s.name,
                        for_whom=w.for_ or s.for_,
                        contact=w.contact or s.contact,
                        id=s.id,
                        strands=s.strands,
                        roles=s.roles,
                        referrals=s.referrals,
                    ),
                )
                for code, w in s.translated.items()
            ),
        )
        for s in tables
    )


DEFAULTS = Path(__file__).parent / "defaults"


def _default_support() -> tuple[SupportService, ...]:
    """The built-in support list (bot/defaults/support.toml: FACTS.md, "Specialist services"), read and
    checked as an operator's [[support]] tables are."""
    tables = tomllib.loads((DEFAULTS / "support.toml").read_text(encoding="utf-8"))["support"]
    return _support_services(TypeAdapter(tuple[SupportTable, ...]).validate_python(tables))


DEFAULT_SUPPORT = _default_support()


@plain_dataclass(frozen=True)
class Config:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    whatsapp: WhatsAppConfig = field(default_factory=WhatsAppConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    web: WebConfig = field(default_factory=WebConfig)
    languages: LanguagesConfig = field(default_factory=LanguagesConfig)
    partners: tuple[Partner, ...] = ()
    support: tuple[SupportService, ...] = DEFAULT_SUPPORT
    source: str = "built-in defaults"

    @property
    def data_path(self) -> Path:
        return Path(self.service.data_dir)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.data_path / 'reportbot.db'}"

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram.token)

    @property
    def whatsapp_enabled(self) -> bool:
        return bool(self.whatsapp.auth_token)

    def flow_settings(self) -> FlowSettings:
        """What the conversation needs to know about this deployment, with its words in each enabled
        language where config gives them (`[service.pl]`, `[partners.pl]`, `[support.pl]`)."""
        written = FlowSettings(
            service_name=self.service.name,
            operator=self.service.operator,
            next_steps=self.service.next_steps,
            partners=self.partners,
            support=self.support,
            resume_after_minutes=self.service.resume_after_minutes,
            languages=self.languages.locales(),
        )
        translated = ((code, self._in(written, code)) for code in written.languages)
        return replace(written, translated=tuple((c, t) for c, t in translated if t != written))

    def _in(self, written: FlowSettings, code: str) -> FlowSettings:
        """The one place that picks a language for config's words: the `code` variant of each, if any."""
        words = self.service.translated.get(code, ServiceWords())
        return replace(
            written,
            service_name=words.name or written.service_name,
            operator=words.operator or written.operator,
            next_steps=words.next_steps or written.next_steps,
            partners=tuple(dict(p.translated).get(code, p) for p in written.partners),
            support=tuple(dict(s.translated).get(code, s) for s in written.support),
        )


# Config declares the sections once; the settings reader below is made from it. What the file holds as
# [[tables]] is read in the tables' own shape, then turned into flows' types (`_config`).
_TABLES: dict[str, Any] = {
    "partners": (tuple[PartnerTable, ...], ()),
    "support": (tuple[SupportTable, ...] | None, None),  # None: the built-in list (DEFAULT_SUPPORT)
}
_SECTIONS: dict[str, type] = {
    name: kind for name, kind in get_type_hints(Config).items() if name not in (*_TABLES, "source")
}
_LISTS = tuple(_TABLES)

# -- reading: pydantic-settings merges the environment over the file --------------------------------------

# What one load_config call reads: the file's values and the environment mapping it was given.
_INPUTS: ContextVar[tuple[dict[str, Any], Mapping[str, str]]] = ContextVar(
    "reportbot_config_inputs", default=({}, {})
)


class _FileValues(PydanticBaseSettingsSource):
    """The TOML file's values, already read (so that a missing or broken file is named our way)."""

    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self.values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.values


class _Environment(EnvSettingsSource):
    """`REPORTBOT_<SECTION>__<KEY>` from the given mapping; nothing else in the environment is read."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self.env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        keys = tuple(f"{ENV_PREFIX}{section}__".lower() for section in _SECTIONS)
        # Case-insensitive, like the rest of pydantic-settings: names are compared in lower case.
        return {name.lower(): value for name, value in self.env.items() if name.lower().startswith(keys)}


class _Reader(BaseSettings):
    """The file and the environment, merged and checked (then copied into `Config`); its fields are
    Config's (see `_Settings`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        enable_decoding=False,  # lists in the environment are comma-separated, not JSON
        extra="forbid",
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        values, env = _INPUTS.get()
        return (_Environment(settings_cls, env), _FileValues(settings_cls, values))  # the first wins


# Every section of Config, as Config declares it, and the [[tables]]: a section added to Config is read.
_FIELDS: dict[str, Any] = {name: (kind, Field(default_factory=kind)) for name, kind in _SECTIONS.items()}
_Settings = create_model("_Settings", __base__=_Reader, **_FIELDS, **_TABLES)


# -- pydantic's errors as our one line -----------------------------------------------------------------


def _key(loc: tuple[int | str, ...]) -> str:
    """("partners", 2, "id") -> "partners[2].id"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _in_file(values: Any, loc: tuple[int | str, ...]) -> bool:
    for part in loc:
        try:
            values = values[part]
        except (KeyError, IndexError, TypeError):
            return False
    return True


_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
_WHAT = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
}


def _written(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The key as the file writes it: `[support.pl]`, not its field `translated` (_language_tables)."""
    return tuple(part for part in loc if part != "translated")


def _problem_of(error: ErrorDetails, values: dict[str, Any]) -> ConfigError:
    """One pydantic error as our one line, naming the key as it is written in the file."""
    loc = _written(tuple(error["loc"]))
    key = _key(loc)
    kind = error["type"]
    if kind in _UNKNOWN:
        what = "unknown section" if len(loc) == 1 else "unknown key"
        if not _in_file(values, loc):
            env_name = ENV_PREFIX + "__".join(str(p) for p in loc).upper()
            return ConfigError(key, f"{what} (from the environment, {env_name}; see config.example.toml)")
        return ConfigError(key, f"{what} (see config.example.toml)")
    if kind in _WHAT:
        secret = any(key.startswith(name) for name in SECRET_KEYS)
        return ConfigError(key, _WHAT[kind] + ("" if secret else f", not {error.get('input')!r}"))
    return ConfigError(key or "config", _shape_problem(kind, loc, error))


def _shape_problem(kind: str, loc: tuple[int | str, ...], error: ErrorDetails) -> str:
    """What is wrong with a value of the wrong shape; never the value itself."""
    if kind == "config":
        return error["msg"]  # our own checks' words
    if kind in ("missing", "missing_argument", "string_too_short"):
        return "is required"
    if kind == "string_type":
        return f"must be text, not {type(error.get('input')).__name__}"
    if kind in ("tuple_type", "list_type"):
        is_tables = bool(loc) and loc[-1] in _LISTS
        return f"must be a list of [[{loc[-1]}]] tables" if is_tables else "must be a list of strings"
    if kind in ("dataclass_type", "dataclass_args_type", "model_type", "dict_type"):
        return f"must be a table, like [{loc[0]}]" if len(loc) == 1 else "must be a table"
    return error["msg"]  # pydantic's own words, which never quote the value


def _check(cfg: Config) -> None:
    """Checks across keys; each failure names one key."""
    seen: set[str] = set()
    for i, partner in enumerate(cfg.partners):
        if partner.id in seen:
            raise ConfigError(f"partners[{i}].id", f"{partner.id!r} is used twice")
        seen.add(partner.id)
    services: set[str] = set()
    for i, service in enumerate(cfg.support):
        if service.referrals and not service.id:
            raise ConfigError(f"support[{i}].id", "is required with referrals = true (exports use it)")
        if service.id and service.id in services:
            raise ConfigError(f"support[{i}].id", f"{service.id!r} is used twice")
        services.add(service.id)
    _check_languages(cfg.languages)
    _check_translated(cfg)
    _check_web(cfg.web)
    if cfg.whatsapp.auth_token and not cfg.whatsapp.public_url:
        raise ConfigError(
            "whatsapp.public_url", "is required with whatsapp.auth_token (Twilio signs that address)"
        )


def _check_web(web: WebConfig) -> None:
    """A web chat session never outlives the record of its quick exit (so it cannot come back after one)."""
    if web.session_idle_minutes > WEB_IDLE_MOST:
        raise ConfigError(
            "web.session_idle_minutes",
            f"must be at most {WEB_IDLE_MOST} (a quick exit is remembered for 47 hours; a session idle longer"
            " could come back after one)",
        )


def _check_languages(chosen: LanguagesConfig) -> None:
    """Every enabled language has a catalog, and that catalog is safe to show: every key English has,
    the same placeholders, the same numbers (a catalog dropped into flows/messages/ is checked here)."""
    for i, locale in enumerate(chosen.enabled):
        if locale not in catalog.CATALOGS:
            names = ", ".join(languages.shipped())
            raise ConfigError(f"languages.enabled[{i}]", f"{locale!r} has no catalog (there are: {names})")
    english = catalog.CATALOGS[catalog.DEFAULT_LOCALE]
    for locale in chosen.locales():
        problems = languages.check(locale, catalog.CATALOGS[locale], english)
        if problems:
            key, problem = problems[0]
            raise ConfigError(f"flows/messages/{locale}.toml: {key}", problem)


def _check_translated(cfg: Config) -> None:
    """A `[service.xx]`, `[partners.xx]` or `[support.xx]` table names a language that has a catalog."""
    tables: list[tuple[str, Mapping[str, object]]] = [("service", cfg.service.translated)]
    tables.append(("whatsapp", cfg.whatsapp.translated))
    tables += [(f"partners[{i}]", dict(p.translated)) for i, p in enumerate(cfg.partners)]
    tables += [(f"support[{i}]", dict(s.translated)) for i, s in enumerate(cfg.support)]
    for where, translated in tables:
        for code in translated:
            if code not in catalog.CATALOGS:
                names = ", ".join(languages.shipped())
                raise ConfigError(f"{where}.{code}", f"{code!r} has no catalog (there are: {names})")
    for i, service in enumerate(cfg.support):  # a phone number must never change in translation
        for code, words in service.translated:
            for key, english, theirs in (
                ("for", service.for_whom, words.for_whom),
                ("contact", service.contact, words.contact),
            ):
                if sorted(_DIGITS.findall(theirs)) != sorted(_DIGITS.findall(english)):
                    raise ConfigError(
                        f"support[{i}].{code}.{key}", f"has numbers that differ from [[support]] {key}"
                    )


def _find_file(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path:
        return Path(path)
    if env.get("REPORTBOT_CONFIG"):
        return Path(env["REPORTBOT_CONFIG"])
    local = Path("config.toml")
    return local if local.exists() else None


def _read_file(file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"file not found: {file}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(file), f"is not valid TOML ({exc})") from None


def _config(settings: BaseSettings, source: str) -> Config:
    """The checked settings in the shape the rest of the code uses (partners as flows' own type)."""
    read = dict(settings)
    partners = tuple(_partner(p) for p in read.pop("partners"))
    support = read.pop("support")
    return Config(
        **read,
        partners=partners,
        support=DEFAULT_SUPPORT if support is None else _support_services(support),
        source=source,
    )


def _partner(table: PartnerTable) -> Partner:
    translated = tuple(
        (code, Partner(id=table.id, name=w.name or table.name, does=w.does or table.does))
        for code, w in table.translated.items()
    )
    return Partner(id=table.id, name=table.name, does=table.does, translated=translated)


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    create_keys: bool = True,
) -> Config:
    """Load, override from the environment, fill local keys if allowed, and check everything."""
    env = os.environ if env is None else env
    file = _find_file(path, env)
    values = _read_file(file) if file is not None else {}
    token = _INPUTS.set((values, env))
    try:
        settings = _Settings()
    except ValidationError as exc:
        # An unknown key first: it often explains a "required" one (a typo in the key's name).
        errors = sorted(exc.errors(), key=lambda e: e["type"] not in _UNKNOWN)
        raise _problem_of(errors[0], values) from None
    finally:
        _INPUTS.reset(token)
    cfg = _config(settings, source=str(file) if file else "built-in defaults")
    _check(cfg)
    if create_keys and (not cfg.security.encryption_keys or not cfg.security.pseudonym_key):
        cfg = _with_local_keys(cfg)
    return cfg


# -- the local key file ------------------------------------------------------------------------------


def _read_key_file(key_file: Path) -> dict[str, str]:
    """The locally generated keys, checked: private to the owner, both keys present and valid."""
    mode = key_file.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            str(key_file),
            f"is readable by others (mode {mode:04o}); chmod 600 it, the keys open every report",
        )
    try:
        stored = tomllib.loads(key_file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise ConfigError(str(key_file), "is not valid TOML (it holds the local keys)") from None
    key = stored.get("encryption_key")
    if not isinstance(key, str) or not _valid_fernet(key):
        raise ConfigError(f"{key_file}: encryption_key", "is missing or not a Fernet key")
    pseudonym = stored.get("pseudonym_key")
    if not isinstance(pseudonym, str) or len(pseudonym) < 32:
        raise ConfigError(f"{key_file}: pseudonym_key", "is missing or shorter than 32 characters")
    return {"encryption_key": key, "pseudonym_key": pseudonym}


def _with_local_keys(cfg: Config) -> Config:
    """Use (creating on first run) a key file under data_dir; fine on a laptop, wrong in production."""
    key_file = cfg.data_path / KEY_FILE
    if key_file.exists():
        stored = _read_key_file(key_file)
    else:
        cfg.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
        stored = {
            "encryption_key": Fernet.generate_key().decode(),
            "pseudonym_key": secrets.token_urlsafe(48),
        }
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("# Generated by reportbot for local use. Production must supply its own keys.\n")
            fh.write(
                f'encryption_key = "{stored["encryption_key"]}"\npseudonym_key = "{stored["pseudonym_key"]}"\n'
            )
    print(
        f"reportbot: warning: using the locally generated key in {key_file}. "
        "Production must set security.encryption_keys and security.pseudonym_key.",
        file=sys.stderr,
    )
    security = SecurityConfig(
        encryption_keys=cfg.security.encryption_keys or (stored["encryption_key"],),
        pseudonym_key=cfg.security.pseudonym_key or stored["pseudonym_key"],
    )
    return replace(cfg, security=security)
