"""One typed configuration, loaded once at start: file, then environment overrides, then checks.

Where it comes from: `--config PATH`, else `$REPORTBOT_CONFIG`, else `./config.toml` when present, else
built-in defaults that run locally with nothing set up. Any key can be overridden from the environment
as `REPORTBOT_<SECTION>__<KEY>` (lists comma-separated). Every problem is reported as one line that names
the key (`ConfigError`), so a bad deployment fails at start and says where to look.
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
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from flows.types import FlowSettings, Partner, SupportService

log = logging.getLogger(__name__)

ENV_PREFIX = "REPORTBOT_"
KEY_FILE = "keys.toml"


class ConfigError(Exception):
    """A configuration problem; str() is one line that starts with the key at fault."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


@dataclass(frozen=True)
class ServiceConfig:
    name: str = "Report Hate"
    operator: str = "a local hate crime partnership"
    next_steps: str = "A member of staff will read your report within 3 working days."
    data_dir: str = "data"
    draft_retention_days: int = 30
    report_retention_days: int = 2555  # 7 years, a common retention period for crime records
    resume_after_minutes: int = 30
    timezone: str = "Europe/London"


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 1_000_000


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""  # empty: SQLite file under service.data_dir


@dataclass(frozen=True)
class SecurityConfig:
    encryption_keys: tuple[str, ...] = ()  # Fernet keys, newest first
    pseudonym_key: str = ""


@dataclass(frozen=True)
class TelegramConfig:
    token: str = ""
    webhook_secret: str = ""
    api_base_url: str = "https://api.telegram.org/bot"
    public_url: str = ""  # https://host the webhook is reachable at (for set-webhook)


@dataclass(frozen=True)
class WhatsAppConfig:
    account_sid: str = ""
    auth_token: str = ""
    from_: str = ""  # `from` in the file: the WhatsApp sender, e.g. whatsapp:+447700900000
    public_url: str = ""  # https://host Twilio calls; the signature covers this, not the internal URL
    followup_content_sid: str = ""  # approved template for staff replies after the 24-hour window


@dataclass(frozen=True)
class LimitsConfig:
    messages_per_second: float = 5.0  # per chat; faster messages wait their turn, never refused
    window_minutes: int = 10  # the volume limit's window, per chat
    window_messages: int = 200  # messages a window that the bot reads and answers
    window_kept: int = 100  # more messages a window kept unanswered (in the transcript)
    reports_per_hour: int = 5  # new reports per sender


@dataclass(frozen=True)
class Config:
    service: ServiceConfig = field(default_factory=ServiceConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    telegram: TelegramConfig = field(default_factory=TelegramConfig)
    whatsapp: WhatsAppConfig = field(default_factory=WhatsAppConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    partners: tuple[Partner, ...] = ()
    support: tuple[SupportService, ...] = ()
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
        """What the conversation needs to know about this deployment."""
        return FlowSettings(
            service_name=self.service.name,
            operator=self.service.operator,
            next_steps=self.service.next_steps,
            partners=self.partners,
            support=self.support,
            resume_after_minutes=self.service.resume_after_minutes,
        )


_SECTIONS: dict[str, type] = {
    "service": ServiceConfig,
    "server": ServerConfig,
    "database": DatabaseConfig,
    "security": SecurityConfig,
    "telegram": TelegramConfig,
    "whatsapp": WhatsAppConfig,
    "limits": LimitsConfig,
}
_FILE_NAMES = {"from": "from_"}  # TOML key -> field name, where the key is a Python keyword


def _field_name(key: str) -> str:
    return _FILE_NAMES.get(key, key)


def _coerce(key: str, value: Any, like: Any) -> Any:
    """Turn a file or environment value into the type of the default, or fail naming the key."""
    if isinstance(like, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        }:
            return value.strip().lower() in {"1", "true", "yes", "on"}
        raise ConfigError(key, f"must be true or false, not {value!r}")
    if isinstance(like, int) and not isinstance(like, bool):
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a whole number, not {value!r}") from None
    if isinstance(like, float):
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(key, f"must be a number, not {value!r}") from None
    if isinstance(like, tuple):
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(key, "must be a list of strings")
    if not isinstance(value, str):
        raise ConfigError(key, f"must be text, not {type(value).__name__}")
    return value


def _section(name: str, cls: type, raw: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(name, "must be a table, like [" + name + "]")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        attr = _field_name(key)
        if attr not in known:
            raise ConfigError(f"{name}.{key}", "unknown key (see config.example.toml)")
        values[attr] = _coerce(f"{name}.{key}", value, getattr(defaults, attr))
    for attr in known:
        env_key = f"{ENV_PREFIX}{name.upper()}__{attr.rstrip('_').upper()}"
        if env_key in env:
            values[attr] = _coerce(f"{name}.{attr.rstrip('_')}", env[env_key], getattr(defaults, attr))
    return cls(**values)


_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _tables(section: str, raw: Any, keys: tuple[str, ...]) -> list[tuple[str, dict[str, str]]]:
    """Check a `[[section]]` list: tables with exactly these keys, each a non-empty string (trimmed)."""
    if not isinstance(raw, list):
        raise ConfigError(section, f"must be a list of [[{section}]] tables")
    out = []
    for i, item in enumerate(raw):
        where = f"{section}[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(where, "must be a table")
        unknown = set(item) - set(keys)
        if unknown:
            raise ConfigError(f"{where}.{sorted(unknown)[0]}", "unknown key (see config.example.toml)")
        for key in keys:
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ConfigError(f"{where}.{key}", "is required")
        out.append((where, {key: item[key].strip() for key in keys}))
    return out


def _partners(raw: Any) -> tuple[Partner, ...]:
    seen: set[str] = set()
    out = []
    for where, item in _tables("partners", raw, ("id", "name", "does")):
        pid = item["id"]
        if not _ID.match(pid):
            raise ConfigError(f"{where}.id", "must be 1-32 lower-case letters, digits, - or _")
        if pid in seen:
            raise ConfigError(f"{where}.id", f"{pid!r} is used twice")
        seen.add(pid)
        out.append(Partner(id=pid, name=item["name"], does=item["does"]))
    return tuple(out)


def _support(raw: Any) -> tuple[SupportService, ...]:
    return tuple(
        SupportService(name=item["name"], for_whom=item["for"], contact=item["contact"])
        for _, item in _tables("support", raw, ("name", "for", "contact"))
    )


def _valid_fernet(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")


def _check(cfg: Config) -> None:
    """Cross-field checks; each failure names one key."""
    for i, key in enumerate(cfg.security.encryption_keys):
        if not _valid_fernet(key):
            raise ConfigError(
                f"security.encryption_keys[{i}]", "is not a Fernet key (32 url-safe base64 bytes)"
            )
    if cfg.security.pseudonym_key and len(cfg.security.pseudonym_key) < 32:
        raise ConfigError("security.pseudonym_key", "must be at least 32 characters")
    if not 0 < cfg.server.port < 65536:
        raise ConfigError("server.port", f"must be between 1 and 65535, not {cfg.server.port}")
    if cfg.server.workers < 1:
        raise ConfigError("server.workers", "must be at least 1")
    if cfg.server.max_body_bytes < 1024:
        raise ConfigError("server.max_body_bytes", "must be at least 1024")
    url = cfg.database_url
    if not (url.startswith("sqlite+aiosqlite://") or url.startswith("postgresql+asyncpg://")):
        raise ConfigError("database.url", "must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
    for name in ("draft_retention_days", "report_retention_days", "resume_after_minutes"):
        if getattr(cfg.service, name) < 1:
            raise ConfigError(f"service.{name}", "must be at least 1")
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(cfg.service.timezone)
    except Exception:
        raise ConfigError("service.timezone", f"unknown time zone {cfg.service.timezone!r}") from None
    if cfg.telegram.webhook_secret and not _WEBHOOK_SECRET.match(cfg.telegram.webhook_secret):
        raise ConfigError("telegram.webhook_secret", "must be 16-256 characters: letters, digits, _ or -")
    if cfg.telegram.token and not re.match(r"^\d+:[A-Za-z0-9_-]{20,}$", cfg.telegram.token):
        raise ConfigError("telegram.token", "does not look like a BotFather token (digits:letters)")
    for section, value in (("telegram", cfg.telegram.public_url), ("whatsapp", cfg.whatsapp.public_url)):
        if value and not value.startswith(("https://", "http://")):
            raise ConfigError(f"{section}.public_url", "must start with https://")
    if cfg.whatsapp.auth_token and not cfg.whatsapp.public_url:
        raise ConfigError(
            "whatsapp.public_url", "is required with whatsapp.auth_token (Twilio signs that address)"
        )
    if cfg.limits.messages_per_second <= 0:
        raise ConfigError("limits.messages_per_second", "must be more than 0")
    for name in ("window_minutes", "window_messages"):
        if getattr(cfg.limits, name) < 1:
            raise ConfigError(f"limits.{name}", "must be at least 1")
    if cfg.limits.window_kept < 0:
        raise ConfigError("limits.window_kept", "must be 0 or more")
    if cfg.limits.reports_per_hour < 1:
        raise ConfigError("limits.reports_per_hour", "must be at least 1")


def _find_file(path: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path | None:
    if path:
        return Path(path)
    if env.get("REPORTBOT_CONFIG"):
        return Path(env["REPORTBOT_CONFIG"])
    local = Path("config.toml")
    return local if local.exists() else None


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    create_keys: bool = True,
) -> Config:
    """Load, override from the environment, fill local keys if allowed, and check everything."""
    env = os.environ if env is None else env
    file = _find_file(path, env)
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            raw = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("--config", f"file not found: {file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(file), f"is not valid TOML ({exc})") from None
    for key in raw:
        if key not in _SECTIONS and key not in ("partners", "support"):
            raise ConfigError(key, "unknown section (see config.example.toml)")
    sections = {name: _section(name, cls, raw.get(name, {}), env) for name, cls in _SECTIONS.items()}
    cfg = Config(
        **sections,
        partners=_partners(raw.get("partners", [])),
        support=_support(raw.get("support", [])),
        source=str(file) if file else "built-in defaults",
    )
    _check(cfg)
    if create_keys and (not cfg.security.encryption_keys or not cfg.security.pseudonym_key):
        cfg = _with_local_keys(cfg)
    return cfg


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
    from dataclasses import replace

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
