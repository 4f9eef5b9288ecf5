"""The one settings class. Only `bot/` reads the environment; everything else is handed a Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from domain.org import Organisation

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"
# The bot scopes an OAuth install asks for: manifest.oauth.yml's (and manifest.yml's)
# oauth_config.scopes.bot, kept equal by tests/test_manifest.py.
BOT_SCOPES = (
    "channels:join",
    "chat:write",
    "chat:write.public",
    "commands",
    "files:write",
    "im:history",
    "im:write",
    "users:read",
)


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the bot can be configured with, read from the environment (or given by tests)."""

    # env_ignore_empty: `SLACK_SIGNING_SECRET=` (a blank line in an env file) is unset, never an empty key.
    model_config = SettingsConfigDict(
        populate_by_name=True, extra="ignore", frozen=True, env_ignore_empty=True
    )

    database_url: str = Field(default="sqlite+aiosqlite:///./reap.db", validation_alias="DATABASE_URL")
    slack_bot_token: SecretStr | None = Field(default=None, validation_alias="SLACK_BOT_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_SIGNING_SECRET")
    slack_signing_secret_previous: SecretStr | None = Field(
        default=None, validation_alias="SLACK_SIGNING_SECRET_PREVIOUS"
    )
    slack_app_token: SecretStr | None = Field(default=None, validation_alias="SLACK_APP_TOKEN")
    slack_api_url: str = Field(default=DEFAULT_SLACK_API_URL, validation_alias="SLACK_API_URL")
    # `single` (the default) serves one workspace with SLACK_BOT_TOKEN; `oauth` installs through
    # Slack's OAuth flow into any number of workspaces and Enterprise Grid orgs.
    install: Literal["single", "oauth"] = Field(default="single", validation_alias="REAP_INSTALL")
    slack_client_id: str | None = Field(default=None, validation_alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(default=None, validation_alias="SLACK_CLIENT_SECRET")
    # Where Slack sends the installer back; unset, Slack uses the app's only Redirect URL.
    slack_redirect_uri: str | None = Field(default=None, validation_alias="SLACK_REDIRECT_URI")
    # Slack's authorize page; tests and the console point it at localslack.
    slack_authorize_url: str = Field(default=DEFAULT_AUTHORIZE_URL, validation_alias="SLACK_AUTHORIZE_URL")
    slack_timeout_seconds: float = Field(default=10.0, gt=0, le=120, validation_alias="SLACK_TIMEOUT_SECONDS")
    # The database time a command, press or form gets from its arrival; what is left of Slack's
    # 3 seconds tells the person when the database could not serve them. Above about 2.8 s Slack
    # gives up first and shows its own timeout instead of our message.
    request_database_seconds: float = Field(
        default=2.5, gt=0, le=60, validation_alias="REAP_REQUEST_DATABASE_SECONDS"
    )
    timezone: str = Field(default="America/New_York", validation_alias="REAP_TIMEZONE")
    fiscal_year_start_month: int = Field(
        default=7, ge=1, le=12, validation_alias="REAP_FISCAL_YEAR_START_MONTH"
    )
    reminder_hour: int = Field(default=9, ge=0, le=23, validation_alias="REAP_REMINDER_HOUR")
    quiet_hour: int = Field(default=18, ge=1, le=24, validation_alias="REAP_QUIET_HOUR")
    holidays: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["US-PA"], validation_alias="REAP_HOLIDAYS"
    )
    holidays_file: Path | None = Field(default=None, validation_alias="REAP_HOLIDAYS_FILE")
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list, validation_alias="REAP_ADMINS")
    ticker: bool = Field(default=True, validation_alias="REAP_TICKER")
    dei_channel: str | None = Field(default=None, validation_alias="REAP_DEI_CHANNEL")
    # How many business days before each DEI meeting its agenda goes out.
    agenda_days: int = Field(default=3, ge=0, le=30, validation_alias="REAP_AGENDA_DAYS")
    # The public dashboard: `public` serves the published site read-only at /dashboard/ and has
    # the tick republish it when a quarter closes (or daily, for a plan's "as of" quarter).
    dashboard: Literal["off", "public"] = Field(default="off", validation_alias="REAP_DASHBOARD")
    dashboard_dir: Path = Field(default=Path("dashboard"), validation_alias="REAP_DASHBOARD_DIR")
    log_level: str = Field(default="INFO", validation_alias="REAP_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="REAP_LOG_FORMAT")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"'{value}' is not a log level such as INFO or DEBUG")
        return value.upper()

    @field_validator("holidays", "admins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"'{value}' is not an IANA time zone such as America/New_York") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        # Parsed now, so a bad port is one line naming the variable instead of a traceback later;
        # the message never repeats the URL, which may hold a password.
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL such as postgresql+asyncpg://host:5432/reap") from None
        except ValueError:
            port = value.partition("://")[2].rpartition("@")[2].partition("/")[0].rpartition(":")[2]
            raise ValueError(f"the port '{port}' is not a number") from None
        return value

    @field_validator("holidays")
    @classmethod
    def _known_calendars(cls, value: list[str]) -> list[str]:
        for spec in value:
            country = spec.split("-", 1)[0]
            if not (country.isalpha() and len(country) == 2) and spec.lower() != "none":
                raise ValueError(f"'{spec}' is not a holiday calendar such as US-PA or none")
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The organisation's default time zone."""
        return ZoneInfo(self.timezone)

    def organisation(self) -> Organisation:
        """The organisation's zone, fiscal year, calendar and bootstrap admins, for the layers below."""
        return Organisation(
            zone=self.zone,
            fiscal_year_start_month=self.fiscal_year_start_month,
            reminder_hour=self.reminder_hour,
            quiet_hour=self.quiet_hour,
            holidays=tuple(self.holidays),
            holidays_file=self.holidays_file,
            dei_channel=self.dei_channel,
            admins=frozenset(self.admins),
            agenda_business_days=self.agenda_days,
        )

    @property
    def oauth(self) -> bool:
        """True when REAP_INSTALL=oauth: many workspaces installed through Slack's OAuth flow."""
        return self.install == "oauth"

    def require(self, *names: str) -> None:
        """Raise SettingsError for the first of `names` (field names) that is unset."""
        for name in names:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value in (None, ""):
                field = type(self).model_fields[name]
                raise SettingsError(str(field.validation_alias), "is not set")

    def secret(self, name: str) -> str:
        """The plain value of a secret setting, after `require`."""
        self.require(name)
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment, turning validation errors into one SettingsError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]) if error["loc"] else "settings"
        field = Settings.model_fields.get(name)
        variable = str(field.validation_alias) if field and field.validation_alias else name
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SettingsError(variable, message) from None
