"""Settings come from the environment once, with runnable defaults and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app import create_app
from bot.settings import DEFAULT_SLACK_API_URL, Settings, SettingsError, load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment with none of our variables set."""
    for name in Settings.model_fields:
        alias = Settings.model_fields[name].validation_alias
        monkeypatch.delenv(str(alias), raising=False)
    return monkeypatch


def test_defaults_run_on_embedded_sqlite_in_philadelphia_time(clean_env: pytest.MonkeyPatch):
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./reap.db"
    assert (settings.timezone, settings.fiscal_year_start_month, settings.reminder_hour) == (
        "America/New_York",
        7,
        9,
    )
    assert settings.holidays == ["US-PA"]
    assert settings.slack_api_url == DEFAULT_SLACK_API_URL
    assert settings.admins == []


def test_environment_values_are_read_and_lists_split_on_commas(clean_env: pytest.MonkeyPatch):
    clean_env.setenv("REAP_ADMINS", "U01ADMIN, U02ADMIN")
    clean_env.setenv("REAP_HOLIDAYS", "US-PA")
    clean_env.setenv("REAP_FISCAL_YEAR_START_MONTH", "1")
    clean_env.setenv("SLACK_BOT_TOKEN", "xoxb-123")
    settings = load_settings()
    assert settings.admins == ["U01ADMIN", "U02ADMIN"]
    assert settings.fiscal_year_start_month == 1
    assert settings.secret("slack_bot_token") == "xoxb-123"
    assert "xoxb-123" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("REAP_TIMEZONE", "Mars/Olympus", "REAP_TIMEZONE: 'Mars/Olympus' is not an IANA time zone"),
        ("REAP_REMINDER_HOUR", "25", "REAP_REMINDER_HOUR:"),
        ("REAP_REMINDER_HOUR", "nine", "REAP_REMINDER_HOUR:"),
        ("REAP_FISCAL_YEAR_START_MONTH", "13", "REAP_FISCAL_YEAR_START_MONTH:"),
        ("DATABASE_URL", "mysql://db/reap", "DATABASE_URL: must start with"),
        ("REAP_HOLIDAYS", "Pennsylvania", "REAP_HOLIDAYS: 'Pennsylvania' is not a holiday calendar"),
    ],
)
def test_malformed_values_name_the_variable(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, expected: str
):
    clean_env.setenv(variable, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(expected)
    assert "\n" not in str(error.value)


def test_requiring_a_missing_secret_names_it(clean_env: pytest.MonkeyPatch):
    with pytest.raises(SettingsError, match=r"^SLACK_SIGNING_SECRET: is not set$"):
        load_settings().require("slack_signing_secret")


def test_an_empty_variable_counts_as_unset_so_no_empty_signing_key_is_ever_used(
    clean_env: pytest.MonkeyPatch,
):
    clean_env.setenv("SLACK_SIGNING_SECRET", "")
    clean_env.setenv("SLACK_BOT_TOKEN", "")
    clean_env.setenv("REAP_TIMEZONE", "")
    settings = load_settings()
    assert (settings.slack_signing_secret, settings.slack_bot_token) == (None, None)
    assert settings.timezone == "America/New_York", "an empty value falls back to the default"
    with pytest.raises(SettingsError, match=r"^SLACK_SIGNING_SECRET: is not set$"):
        create_app(settings)


def test_an_empty_secret_given_directly_is_not_set_either(clean_env: pytest.MonkeyPatch):
    with pytest.raises(SettingsError, match=r"^SLACK_SIGNING_SECRET: is not set$"):
        load_settings(slack_signing_secret="").require("slack_signing_secret")


def test_oauth_credentials_left_in_a_single_workspace_environment_stop_the_start_with_a_reason(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
):
    """Bolt would otherwise start an OAuth flow of its own, with file stores in the home directory."""
    for variable, value in {
        "SLACK_CLIENT_ID": "1.2",
        "SLACK_CLIENT_SECRET": "client-secret",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "signing-secret",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'reap.db'}",
    }.items():
        clean_env.setenv(variable, value)

    with pytest.raises(SettingsError, match=r"^REAP_INSTALL: is single, yet SLACK_CLIENT_ID and"):
        create_app(load_settings())

    clean_env.delenv("SLACK_CLIENT_SECRET")
    assert create_app(load_settings()).bolt.oauth_flow is None, "one of them alone starts no flow"
