"""Logging for operators: plain or JSON lines, with Slack secrets redacted from every record."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from bot.settings import Settings

TOKEN_PATTERN = re.compile(r"xox[abpre]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
REDACTED = "[redacted]"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class RedactSecrets(logging.Filter):
    """Replace Slack tokens and the signing secret in a record's final message."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        """`text` with every secret masked."""
        text = TOKEN_PATTERN.sub(REDACTED, text)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_text is None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exception text)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """Install one root handler with the chosen format and the secret-redacting filter."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    secrets = [
        settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
        settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else "",
        settings.slack_app_token.get_secret_value() if settings.slack_app_token else "",
        settings.slack_signing_secret_previous.get_secret_value()
        if settings.slack_signing_secret_previous
        else "",
    ]
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    # uvicorn's own config gives its loggers handlers that bypass our format and redaction; with
    # none of their own they propagate here (`reap serve` passes uvicorn log_config=None).
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Alembic narrates every plugin at INFO; operators only need its warnings.
    logging.getLogger("alembic").setLevel(logging.WARNING)
