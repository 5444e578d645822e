"""Configuration: file, environment overrides, local defaults, and one clear line for every mistake."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_config


def test_defaults_run_with_nothing_set_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = load_config(env={})
    assert cfg.source == "built-in defaults"
    assert cfg.database_url == "sqlite+aiosqlite:///data/reportbot.db"
    key_file = tmp_path / "data" / "keys.toml"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700  # the data folder is private too
    assert "Production must set security.encryption_keys" in capsys.readouterr().err
    again = load_config(env={})
    assert again.security == cfg.security  # the generated key is reused, not replaced


def test_environment_overrides_file(config_path: Path) -> None:
    cfg = load_config(
        config_path, env={"REPORTBOT_SERVER__PORT": "9000", "REPORTBOT_TELEGRAM__TOKEN": "123:" + "a" * 30}
    )
    assert cfg.server.port == 9000
    assert cfg.telegram_enabled
    assert [p.id for p in cfg.partners] == ["police", "council"]


def test_config_env_var_names_the_file(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(env={"REPORTBOT_CONFIG": str(config_path)})
    assert cfg.source == str(config_path)


@pytest.mark.parametrize(
    ("extra", "env", "key"),
    [
        ("[server]\nport = 70000\n", {}, "server.port"),
        ("[server]\nprot = 8080\n", {}, "server.prot"),
        ("[nonsense]\na = 1\n", {}, "nonsense"),
        ("", {"REPORTBOT_SERVER__PORT": "eighty"}, "server.port"),
        ("[database]\nurl = 'mysql://x'\n", {}, "database.url"),
        ("[telegram]\nwebhook_secret = 'short'\n", {}, "telegram.webhook_secret"),
        ("[[partners]]\nid = 'Bad Id'\nname = 'x'\ndoes = 'y'\n", {}, "partners[2].id"),
        # Longer than a quick exit is remembered (47 hours): a session could come back after one.
        ("", {"REPORTBOT_WEB__SESSION_IDLE_MINUTES": "2821"}, "web.session_idle_minutes"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, extra: str, env: dict[str, str], key: str) -> None:
    from tests.conftest import write_config

    text = write_config(tmp_path).read_text()
    if extra.startswith("[database]"):
        text = text.replace("[database]\n", "")
    if extra.startswith("[server]"):
        pass
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n" + extra)
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert str(info.value).startswith(key + ":")


def test_bad_encryption_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[security]\nencryption_keys = ["not-a-key"]\npseudonym_key = "' + "x" * 40 + '"\n')
    with pytest.raises(ConfigError, match=r"^security.encryption_keys\[0\]:"):
        load_config(path, env={})


def test_cli_fails_with_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = -1\n")
    assert main(["--config", str(path), "flow"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["reportbot: config error: server.port: must be between 1 and 65535, not -1"]


def test_missing_config_file_is_named(tmp_path: Path, capsys) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "flow"]) == 2
    assert "config error: --config: file not found" in capsys.readouterr().err


def test_example_config_loads_and_documents_every_key() -> None:
    import tomllib
    from dataclasses import fields

    from bot import config as cfgmod

    example = Path(__file__).parent.parent / "config.example.toml"
    cfg = load_config(example, env={}, create_keys=False)
    assert [p.id for p in cfg.partners] == ["police", "council"]
    raw = tomllib.loads(example.read_text())
    for section, cls in cfgmod._SECTIONS.items():
        documented = set(raw[section])
        for f in fields(cls):
            if f.name == "translated":  # written as [service.pl] tables: shown in a comment
                assert f"[{section}.pl]" in example.read_text(), (
                    f"[{section}.pl] is not in config.example.toml"
                )
                continue
            assert f.name.rstrip("_") in documented, f"{section}.{f.name} is not in config.example.toml"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("this is not toml", "is not valid TOML"),
        ('pseudonym_key = "' + "k" * 40 + '"\n', "encryption_key"),
        ('encryption_key = "not-a-key"\npseudonym_key = "' + "k" * 40 + '"\n', "encryption_key"),
        ('encryption_key = "' + "A" * 43 + '="\npseudonym_key = "short"\n', "pseudonym_key"),
    ],
)
def test_a_damaged_local_key_file_is_named_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    key_file = tmp_path / "data" / "keys.toml"
    key_file.parent.mkdir()
    key_file.write_text(content)
    key_file.chmod(0o600)
    with pytest.raises(ConfigError) as err:
        load_config(env={})
    assert str(err.value).startswith("data/keys.toml") and problem in str(err.value)
    assert "not-a-key" not in str(err.value) and "k" * 40 not in str(err.value), "never the key itself"


def test_a_local_key_file_readable_by_others_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    load_config(env={})  # makes the file
    key_file = tmp_path / "data" / "keys.toml"
    key_file.chmod(0o644)
    with pytest.raises(ConfigError) as err:
        load_config(env={})
    assert str(err.value).startswith("data/keys.toml") and "chmod 600" in str(err.value)


def test_lists_come_comma_separated_from_the_environment(config_path: Path) -> None:
    from cryptography.fernet import Fernet

    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    cfg = load_config(
        config_path,
        env={
            "REPORTBOT_SECURITY__ENCRYPTION_KEYS": f"{new}, {old}",
            "REPORTBOT_WHATSAPP__FROM": "whatsapp:+447700900000",
            "REPORTBOT_LIMITS__MESSAGES_PER_SECOND": "2.5",
        },
    )
    assert cfg.security.encryption_keys == (new, old)  # newest first, spaces trimmed
    assert cfg.whatsapp.from_ == "whatsapp:+447700900000"
    assert cfg.limits.messages_per_second == 2.5
    assert cfg.server.port == 8080  # the rest of the file and the defaults stand


def test_a_mistyped_environment_key_is_refused_and_named(config_path: Path) -> None:
    # A typo in an override must not be ignored: REPORTBOT_SECURITY__ENCRYPTION_KEY (no S) would
    # otherwise leave the service running on the local key.
    with pytest.raises(ConfigError) as err:
        load_config(config_path, env={"REPORTBOT_SECURITY__ENCRYPTION_KEY": "x"})
    assert str(err.value).startswith("security.encryption_key: unknown key")
    assert "REPORTBOT_SECURITY__ENCRYPTION_KEY" in str(err.value)


def test_other_reportbot_variables_are_not_configuration(config_path: Path) -> None:
    env = {
        "REPORTBOT_CONFIG": str(config_path),
        "REPORTBOT_ACTOR": "sam",
        "REPORTBOT_TEST_POSTGRES_URL": "postgresql://x",
        "REPORTBOT_SERVICE": "not a table",
    }
    assert load_config(env=env).service.name == "Report Hate"


@pytest.mark.parametrize(
    ("extra", "env", "expected"),
    [
        ("[server]\nport = true\n", {}, "server.port: must be a whole number, not True"),
        ("[server]\nworkers = 1.5\n", {}, "server.workers: must be a whole number, not 1.5"),
        ("[server]\nworkers = 0\n", {}, "server.workers: must be at least 1"),
        ("[service]\nname = 3\n", {}, "service.name: must be text, not int"),
        ("[service]\ntimezone = 'Mars/Base'\n", {}, "service.timezone: unknown time zone 'Mars/Base'"),
        ("service = 3\n", {}, "service: must be a table, like [service]"),
        ("[limits]\nmessages_per_second = 0\n", {}, "limits.messages_per_second: must be more than 0"),
        (
            "",
            {"REPORTBOT_LIMITS__REPORTS_PER_HOUR": "many"},
            "limits.reports_per_hour: must be a whole number",
        ),
        ("[[support]]\nname = 'x'\nfro = 'y'\ncontact = 'z'\n", {}, "support[0].fro: unknown key"),
        ("[[support]]\nname = 'x'\ncontact = 'z'\n", {}, "support[0].for: is required"),
        (
            "[[partners]]\nid = 'police'\nname = 'x'\ndoes = 'y'\n" * 2,
            {},
            "partners[1].id: 'police' is used twice",
        ),
        ("[whatsapp]\nauth_token = 'abc'\n", {}, "whatsapp.public_url: is required with whatsapp.auth_token"),
        # The deployment's words in another language: only for a language that has a catalog, only the
        # keys that have words, and a support service's numbers exactly as in English.
        ("[service.de]\noperator = 'x'\n", {}, "service.de: 'de' has no catalog (there are: en, pl, ro, ur)"),
        (
            "[[partners]]\nid = 'police'\nname = 'x'\ndoes = 'y'\n[partners.xx]\nname = 'z'\n",
            {},
            "partners[0].xx: 'xx' has no catalog",
        ),
        ("[whatsapp.fr]\nfollowup_content_sid = 'HX1'\n", {}, "whatsapp.fr: 'fr' has no catalog"),
        (
            "[[support]]\nname = 'x'\nfor = 'y'\ncontact = 'z'\n[support.pl]\nid = 'w'\n",
            {},
            "support[0].pl.id: unknown key (see config.example.toml)",
        ),
        (
            "[[support]]\nname = 'x'\nfor = 'y'\ncontact = '0800 1111'\n[support.ur]\ncontact = '0800 111'\n",
            {},
            "support[0].ur.contact: has numbers that differ from [[support]] contact",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_the_key(
    tmp_path: Path, extra: str, env: dict[str, str], expected: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(extra)
    with pytest.raises(ConfigError) as err:
        load_config(path, env=env, create_keys=False)
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("env", "secret"),
    [
        ({"REPORTBOT_SECURITY__PSEUDONYM_KEY": "hunter2-short"}, "hunter2-short"),
        ({"REPORTBOT_SECURITY__ENCRYPTION_KEYS": "hunter2-not-fernet"}, "hunter2-not-fernet"),
        ({"REPORTBOT_TELEGRAM__TOKEN": "hunter2:bad"}, "hunter2"),
        ({"REPORTBOT_TELEGRAM__WEBHOOK_SECRET": "hunter2 with spaces"}, "hunter2"),
        ({"REPORTBOT_DATABASE__URL": "mysql://user:hunter2@db/x"}, "hunter2"),
    ],
)
def test_an_error_never_quotes_a_secret(
    config_path: Path, env: dict[str, str], secret: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(config_path, env=env)
    assert secret not in str(err.value)
    assert err.value.key.split(".")[0] in ("security", "telegram", "database")
    assert main(["--config", str(config_path), "flow"]) == 0  # without the override it starts
    import os

    os.environ.update(env)
    try:
        assert main(["--config", str(config_path), "stats"]) == 2
    finally:
        for name in env:
            del os.environ[name]
    printed = capsys.readouterr()
    assert secret not in printed.err and secret not in printed.out


def test_the_settings_reader_knows_every_section_of_config() -> None:
    # A new section added to Config but not to the pydantic-settings class would never be read.
    from dataclasses import fields

    from bot import config as cfgmod

    readable = set(cfgmod._Settings.model_fields)
    assert readable == {f.name for f in fields(cfgmod.Config)} - {"source"}
    assert set(cfgmod._SECTIONS) | {"partners", "support"} == readable


def test_words_in_other_languages_replace_only_what_they_give(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[service]\noperator = 'Anytown Council'\n[service.pl]\noperator = 'Rada Miasta'\n"
        "[[support]]\nname = 'Help'\nfor = 'everyone, 24 hours'\ncontact = '0800 1111'\n"
        "[support.ro]\nfor = 'toată lumea, 24 de ore pe zi'\n",
        encoding="utf-8",
    )
    settings = load_config(path, env={}, create_keys=False).flow_settings()
    assert settings.in_language("pl").operator == "Rada Miasta"
    assert settings.in_language("ro").operator == "Anytown Council"  # no [service.ro]: as written
    [ro] = settings.in_language("ro").support
    assert (ro.name, ro.for_whom, ro.contact) == ("Help", "toată lumea, 24 de ore pe zi", "0800 1111")
    assert settings.in_language("en").support[0].for_whom == "everyone, 24 hours"
    assert settings.in_language("pl").support[0].for_whom == "everyone, 24 hours"


def test_the_built_in_support_list_speaks_every_shipped_language() -> None:
    from bot.config import DEFAULT_SUPPORT

    for service in DEFAULT_SUPPORT:
        assert sorted(code for code, _ in service.translated) == ["pl", "ro", "ur"], service.id
        for _, words in service.translated:
            assert words.for_whom != service.for_whom, (service.id, words.for_whom)


def test_a_web_session_may_last_as_long_as_a_quick_exit_is_remembered(config_path: Path) -> None:
    config = load_config(config_path, env={"REPORTBOT_WEB__SESSION_IDLE_MINUTES": "2820"})
    assert config.web.session_idle_minutes == 2820
