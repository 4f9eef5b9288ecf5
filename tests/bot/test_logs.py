"""Operator logs: secrets never appear, and JSON lines are parseable."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logs import JsonFormatter, RedactSecrets
from bot.settings import Settings


@pytest.fixture
def redactor() -> RedactSecrets:
    """A filter that knows one signing secret."""
    return RedactSecrets(["s3cr3t-signing"])


@pytest.mark.parametrize(
    "message",
    [
        "calling with token xoxb-1234-5678-abcdef",
        "app token xapp-1-A01-123-abc",
        "refresh xoxe-1-abc and user xoxp-99-88",
        "signature computed with s3cr3t-signing",
    ],
)
def test_tokens_and_the_signing_secret_are_redacted(redactor: RedactSecrets, message: str):
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s", (message,), None)
    redactor.filter(record)
    text = record.getMessage()
    assert "[redacted]" in text
    for secret in ("xoxb-1234", "xapp-1-A01", "xoxe-1-abc", "xoxp-99", "s3cr3t-signing"):
        assert secret not in text


def test_secrets_in_exception_text_are_redacted(redactor: RedactSecrets):
    try:
        raise RuntimeError("bad token xoxb-999-leak")
    except RuntimeError:
        import sys

        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    redactor.filter(record)
    assert record.exc_text is not None and "xoxb-999-leak" not in record.exc_text


def test_json_lines_carry_level_logger_and_message():
    record = logging.LogRecord("reap.delivery", logging.WARNING, __file__, 1, "sent %d", (3,), None)
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "reap.delivery", "sent 3")


def test_log_format_and_level_are_validated():
    with pytest.raises(ValueError, match="log level"):
        Settings(log_level="loud")  # type: ignore[call-arg]
    assert Settings(log_format="json").log_format == "json"  # type: ignore[call-arg]
