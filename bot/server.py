"""The ASGI front door: /slack/events in front of Bolt, and /healthz for operators."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import ReapApp

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_000_000
SIGNATURE_WINDOW_SECONDS = 300


def signature_valid(secrets: Sequence[str], headers: dict[str, str], body: bytes, *, now: float) -> bool:
    """Slack's v0 HMAC over the raw bytes, within the five-minute window, compared in constant time.

    Several secrets are accepted so a rotation can overlap: the new one and, briefly, the previous.
    """
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    matches = [
        hmac.compare_digest("v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest(), signature)
        for secret in secrets
    ]
    return any(matches)


def parse_slack_body(decoded: str, content_type: str) -> dict[str, Any] | None:
    """The request body as Slack meant it, or None if it is malformed.

    Bolt's own parser treats any form body containing the word "payload" as interactivity, so a
    slash command whose text says "payload" would become unroutable; and it answers 500 to a body
    that starts with "{" but is not JSON. We parse by the fields actually present instead.
    """
    try:
        if content_type.split(";")[0].strip() == "application/json":
            body = json.loads(decoded)
        else:
            params = dict(urllib.parse.parse_qsl(decoded, keep_blank_values=True))
            body = (
                json.loads(params["payload"]) if "payload" in params and "command" not in params else params
            )
    except (json.JSONDecodeError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def bolt_request_for(
    raw: str, body: dict[str, Any], *, query: str, headers: dict[str, str | Sequence[str]]
) -> AsyncBoltRequest:
    """A Bolt request carrying our parse of the body (Bolt still re-verifies the raw bytes)."""
    request = AsyncBoltRequest(body="", query=query, headers=headers)
    request.raw_body = raw
    request.body = body
    request.context = build_async_context(AsyncBoltContext({}), body)
    return request


def create_asgi(app: ReapApp, *, manage_lifecycle: bool = True) -> Starlette:
    """The Starlette application serving one ReapApp (starting and closing it with the server)."""
    secrets = [app.settings.secret("slack_signing_secret")]
    if app.settings.slack_signing_secret_previous:
        secrets.append(app.settings.slack_signing_secret_previous.get_secret_value())

    async def slack_events(request: Request) -> Response:
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse({"error": "request too large"}, status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "request too large"}, status_code=413)
        headers = {k.lower(): v for k, v in request.headers.items()}
        # Verify before parsing anything: Bolt would answer 500 to a signed body that is not UTF-8,
        # and nothing about an unsigned request deserves a parse.
        if not signature_valid(secrets, headers, body, now=time.time()):
            log.warning(
                "refused an unsigned or stale request from %s", request.client.host if request.client else "?"
            )
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            decoded = body.decode("utf-8")
        except UnicodeDecodeError:
            return JSONResponse({"error": "body is not UTF-8"}, status_code=400)
        parsed = parse_slack_body(decoded, headers.get("content-type", ""))
        if parsed is None:
            return JSONResponse({"error": "malformed body"}, status_code=400)
        bolt_request = bolt_request_for(
            decoded, parsed, query=request.url.query, headers=dict(request.headers)
        )
        try:
            response = await app.bolt.async_dispatch(bolt_request)
        except Exception:
            log.exception("request failed")
            return JSONResponse({"error": "internal error"}, status_code=500)
        return Response(
            status_code=response.status,
            content=response.body,
            headers={
                k: v
                for k, v in response.first_headers_without_set_cookie().items()
                if k.lower() != "content-length"
            },
        )

    async def healthz(request: Request) -> Response:
        report: dict[str, Any] = {}
        healthy = True
        try:
            async with asyncio.timeout(2):
                async with app.sessions() as session:
                    await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            report["database"] = "ok"
        except Exception as exc:
            report["database"] = f"unreachable: {type(exc).__name__}"
            healthy = False
        for name, check in app.health_checks.items():
            problem = await check()
            report[name] = problem or "ok"
            healthy = healthy and problem is None
        report["ok"] = healthy
        return JSONResponse(report, status_code=200 if healthy else 503)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if manage_lifecycle:
            await app.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await app.close()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
    )
