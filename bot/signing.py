"""Slack's v0 request signature: one implementation for the server, the console, tests and benchmarks."""

from __future__ import annotations

import hashlib
import hmac


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The v0 signature of exactly these bytes at this timestamp (`v0=<hex HMAC-SHA256>`)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, *, secret: str, timestamp: int) -> dict[str, str]:
    """The headers Slack sends with a request body: its timestamp and signature."""
    ts = str(timestamp)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slack_signature(secret, ts, body)}
