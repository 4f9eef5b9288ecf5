"""The ASGI front door: /slack/events in front of Bolt; /livez, /readyz (and /healthz) and /metrics;
and, when REAP_DASHBOARD=public, the published dashboard read-only at /dashboard/."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from bot.app import ReapApp
from bot.signing import slack_signature
from storage.migrate import schema_problem

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
    matches = [hmac.compare_digest(slack_signature(secret, timestamp, body), signature) for secret in secrets]
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
    # A signed body nested deeper than the interpreter's recursion limit is malformed too.
    except (json.JSONDecodeError, ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


# Slack sends these as objects (or null); Bolt and the listeners call .get() on them.
_OBJECTS = ("team", "user", "channel", "container", "message", "view", "event", "state", "previous_message")
# Bolt reads these with body.get(name, {}), which a null defeats.
_NEVER_NULL = ("event", "view", "function")
# Identifiers and URLs that are strings wherever Slack sends them.
_STRINGS = ("type", "team_id", "user_id", "channel_id", "trigger_id", "response_url", "callback_id")
_INTERACTIVE = frozenset(
    {
        "block_actions",
        "block_suggestion",
        "interactive_message",
        "message_action",
        "shortcut",
        "view_submission",
        "view_closed",
        "dialog_submission",
        "dialog_cancellation",
        "dialog_suggestion",
        "workflow_step_edit",
    }
)
# Slack's ids are short alphanumerics (T…, U…, C…, Ev…). We store them in bounded columns, so a
# longer or stranger one is refused here rather than failing a write behind the ack.
_SLACK_ID = re.compile(r"[A-Za-z0-9]{1,32}", re.ASCII)
_EVENT_ID = re.compile(r"[A-Za-z0-9]{1,64}", re.ASCII)
# Typed fields of one input's state in view.state.values (the rest are lists or numbers).
_STATE_STRINGS = ("type", "value", "selected_date", "selected_time", "selected_user", "selected_channel")


def _objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _strings(obj: dict[str, Any], names: Sequence[str]) -> str | None:
    """The first of `names` present in `obj` with a non-string value."""
    return next((n for n in names if obj.get(n) is not None and not isinstance(obj[n], str)), None)


def _web_address(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _slack_id(value: Any) -> bool:
    return isinstance(value, str) and _SLACK_ID.fullmatch(value) is not None


def _id_of(value: Any) -> Any:
    """An event's user or channel, given as an id or as an object carrying one."""
    return value.get("id") if isinstance(value, dict) else value


def _ids_problem(ids: dict[str, Any]) -> str | None:
    """The first of the present, non-empty ids that is not shaped like a Slack id."""
    wrong = next((name for name, v in ids.items() if v not in (None, "") and not _slack_id(v)), None)
    return f"{wrong} is not a Slack id" if wrong else None


def _view_problem(view: Any) -> str | None:
    if (
        not isinstance(view, dict)
        or not _nonempty(view.get("callback_id"))
        or not _nonempty(view.get("type"))
    ):
        return "view needs a type and a callback_id"
    if _strings(view, ("id", "private_metadata", "team_id", "app_installed_team_id")):
        return "view has a field of the wrong type"
    state = view.get("state")
    if state is not None and not isinstance(state, dict):
        return "view.state is not an object"
    values = (state or {}).get("values")
    if values is None:
        return None
    if not isinstance(values, dict) or not all(isinstance(block, dict) for block in values.values()):
        return "view.state.values is not an object of blocks"
    for block in values.values():
        for element in block.values():
            if not isinstance(element, dict) or _strings(element, _STATE_STRINGS):
                return "view.state.values has an input of the wrong shape"
            if element.get("selected_option") is not None and not isinstance(
                element["selected_option"], dict
            ):
                return "view.state.values has an input of the wrong shape"
    return None


def _actions_problem(actions: Any) -> str | None:
    if not _objects(actions) or not actions:
        return "actions is not a list of actions"
    for action in actions:
        if not _nonempty(action.get("action_id")) or _strings(action, ("block_id", "value", "type")):
            return "an action needs an action_id"
        if action.get("selected_option") is not None and not isinstance(action["selected_option"], dict):
            return "an action's selected_option is not an object"
    return None


def envelope_problem(body: dict[str, Any]) -> str | None:
    """Why a parsed body is not shaped like anything Slack sends, or None if it is.

    Bolt's own request matching and context building index these fields without checking
    them (a block_actions payload with no actions, a view without a type, a `team` that is a
    string), so a correctly signed but misshapen body would otherwise surface as a 500.
    """
    for name in _OBJECTS:
        if body.get(name) is not None and not isinstance(body[name], dict):
            return f"{name} is not an object"
    for name in _NEVER_NULL:
        if name in body and not isinstance(body[name], dict):
            return f"{name} is not an object"
    if body.get("enterprise") is not None and not isinstance(body["enterprise"], str | dict):
        return "enterprise is not an object"
    if body.get("authorizations") is not None and not _objects(body["authorizations"]):
        return "authorizations is not a list of objects"
    if body.get("actions") is not None and not _objects(body["actions"]):
        return "actions is not a list of actions"
    wrong = _strings(body, _STRINGS)
    if wrong:
        return f"{wrong} is not a string"
    if body.get("response_url") is not None and not _web_address(body["response_url"]):
        return "response_url is not a web address"
    kind = body.get("type")
    if "command" in body:
        # A slash command is a form: every field is a string, and it always names its caller.
        if not all(isinstance(v, str) for v in body.values()):
            return "a slash command field is not a string"
        if not (_nonempty(body.get("team_id")) and _nonempty(body.get("user_id"))):
            return "a slash command needs team_id and user_id"
        return _ids_problem({n: body.get(n) for n in ("team_id", "user_id", "channel_id")})
    if kind == "event_callback":
        event = body.get("event")
        if not _nonempty(body.get("team_id")) or not isinstance(event, dict):
            return "an event callback needs team_id and an event"
        if not _nonempty(event.get("type")):
            return "an event needs a type"
        event_id = body.get("event_id")
        if event_id is not None and not (isinstance(event_id, str) and _EVENT_ID.fullmatch(event_id)):
            return "event_id is not a Slack event id"
        # Bolt reads the user and channel of an event as an id or as an object with an id.
        if any(
            event.get(n) is not None and not isinstance(event[n], str | dict) for n in ("user", "channel")
        ):
            return "an event's user or channel is neither an id nor an object"
        return _ids_problem(
            {
                "team_id": body["team_id"],
                "event.user": _id_of(event.get("user")),
                "event.channel": _id_of(event.get("channel")),
            }
        )
    if kind not in _INTERACTIVE:
        return None
    user, team = body.get("user") or {}, body.get("team") or {}
    team_id = team.get("id") if team else user.get("team_id")
    if not _nonempty(user.get("id")) or not _nonempty(team_id) or _strings(user, ("team_id",)):
        return "an interaction needs a user and a team"
    wrong = _ids_problem(
        {
            "user.id": user.get("id"),
            "team": team_id,
            "channel.id": (body.get("channel") or {}).get("id"),
            "container.channel_id": (body.get("container") or {}).get("channel_id"),
        }
    )
    if wrong:
        return wrong
    message = body.get("message")
    if message is not None and not _nonempty(message.get("ts")):
        return "message needs a ts"
    if _strings(body.get("container") or {}, ("channel_id", "message_ts", "type")):
        return "container has a field of the wrong type"
    if _strings(body.get("channel") or {}, ("id",)):
        return "channel has a field of the wrong type"
    if kind == "block_actions":
        return _actions_problem(body.get("actions"))
    if kind in ("view_submission", "view_closed"):
        return _view_problem(body.get("view"))
    return None


def bolt_request_for(
    raw: str, body: dict[str, Any], *, query: str, headers: dict[str, str | Sequence[str]]
) -> AsyncBoltRequest:
    """A Bolt request carrying our parse of the body (Bolt still re-verifies the raw bytes)."""
    request = AsyncBoltRequest(body="", query=query, headers=headers)
    request.raw_body = raw
    request.body = body
    request.context = build_async_context(AsyncBoltContext({}), body)
    return request


# Each readiness check gets this long: a probe must answer even when a dependency hangs.
READY_CHECK_SECONDS = 2.0


async def _bounded(check: Callable[[], Awaitable[str | None]]) -> str | None:
    try:
        async with asyncio.timeout(READY_CHECK_SECONDS):
            return await check()
    except TimeoutError:
        return f"no answer within {READY_CHECK_SECONDS:g} s"


async def readiness(app: ReapApp) -> dict[str, Any]:
    """Every readiness check by name ("ok" or what is wrong), and "ok": whether all passed.

    The database answers; its schema is at the newest migration; Slack's auth.test has succeeded
    with the configured token; and every check the app registered (the ticker ticked recently
    when it runs, Socket Mode's pongs) passes.
    """
    report: dict[str, Any] = {}

    async def database() -> str | None:
        async with app.sessions() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        return None

    async def schema() -> str | None:
        async with app.sessions() as session:
            return await schema_problem(session)

    try:
        problem = await _bounded(database)
    except Exception as exc:
        problem = f"unreachable: {type(exc).__name__}"
    report["database"] = problem or "ok"
    if problem is not None:
        report["schema"] = "not checked: the database is unreachable"
    else:
        try:
            report["schema"] = await _bounded(schema) or "ok"
        except Exception as exc:
            report["schema"] = f"unreadable: {type(exc).__name__}"
    identity = app.identity
    report["slack"] = "ok" if identity.team_id or identity.problem is None else str(identity.problem)
    for name, check in app.health_checks.items():
        try:
            report[name] = await _bounded(check) or "ok"
        except Exception as exc:
            report[name] = f"check failed: {type(exc).__name__}"
    report["ok"] = all(value == "ok" for value in report.values())
    return report


def probe_routes(app: ReapApp) -> list[Route]:
    """GET /livez, /readyz (with /healthz as its old name) and /metrics, for operators."""

    async def livez(request: Request) -> Response:
        # The process answers: nothing else is asked, so a slow database never restarts the bot.
        return JSONResponse({"ok": True})

    async def readyz(request: Request) -> Response:
        report = await readiness(app)
        return JSONResponse(report, status_code=200 if report["ok"] else 503)

    async def metrics(request: Request) -> Response:
        body = await app.metrics.scrape(app.sessions, app.reap.clock())
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/livez", livez, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/healthz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


# The dashboard is static and public: no script, nothing from elsewhere, never framed.
DASHBOARD_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "public, max-age=300",
}


class Dashboard:
    """The published site at `folder`, read-only: files only (GET and HEAD), no dotfiles, and a
    plain 404 until `reap publish` (or the tick) has written it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files = StaticFiles(directory=folder, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if any(part.startswith(".") for part in path.split("/")) or not self.folder.is_dir():
            response = PlainTextResponse("The dashboard has not been published here.", status_code=404)
            await response(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode().lower() not in DASHBOARD_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in DASHBOARD_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.files(scope, receive, with_headers)


def dashboard_routes(app: ReapApp) -> list[BaseRoute]:
    """/dashboard/ when REAP_DASHBOARD=public; nothing at all otherwise."""
    if app.settings.dashboard != "public":
        return []
    return [Mount("/dashboard", app=Dashboard(Path(app.settings.dashboard_dir)), name="dashboard")]


def install_routes(app: ReapApp) -> list[BaseRoute]:
    """With REAP_INSTALL=oauth, Bolt's install page and OAuth redirect; nothing otherwise."""
    flow = app.bolt.oauth_flow
    if flow is None:
        return []

    async def install(request: Request) -> Response:
        return to_starlette_response(await flow.handle_installation(to_async_bolt_request(request, b"")))

    async def redirect(request: Request) -> Response:
        # A wrong, reused or expired state gets Bolt's failure page and stores nothing.
        return to_starlette_response(await flow.handle_callback(to_async_bolt_request(request, b"")))

    return [
        Route(flow.install_path, install, methods=["GET"]),
        Route(flow.redirect_uri_path, redirect, methods=["GET"]),
    ]


def create_health_asgi(app: ReapApp) -> Starlette:
    """Only the probes and /metrics, for `reap socket`: Slack talks to it over the WebSocket."""
    return Starlette(routes=probe_routes(app))


def create_asgi(app: ReapApp, *, manage_lifecycle: bool = True) -> Starlette:
    """The Starlette application serving one ReapApp (starting and closing it with the server)."""
    secrets = [app.settings.secret("slack_signing_secret")]
    if app.settings.slack_signing_secret_previous:
        secrets.append(app.settings.slack_signing_secret_previous.get_secret_value())

    async def slack_events(request: Request) -> Response:
        declared = request.headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            log.warning("refused a request body over %d bytes", MAX_BODY_BYTES)
            return JSONResponse({"error": "request too large"}, status_code=413)
        # Read at most the limit: a chunked upload declares no length, and must not fill memory.
        received = bytearray()
        async for chunk in request.stream():
            received += chunk
            if len(received) > MAX_BODY_BYTES:
                log.warning("refused a request body over %d bytes", MAX_BODY_BYTES)
                return JSONResponse({"error": "request too large"}, status_code=413)
        body = bytes(received)
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
            log.warning("refused a signed request whose body is not UTF-8")
            return JSONResponse({"error": "body is not UTF-8"}, status_code=400)
        parsed = parse_slack_body(decoded, headers.get("content-type", ""))
        problem = "not a form or a JSON object" if parsed is None else envelope_problem(parsed)
        if parsed is None or problem is not None:
            log.warning("refused a signed but malformed request: %s", problem)
            return JSONResponse({"error": "malformed body"}, status_code=400)
        try:
            bolt_request = bolt_request_for(
                decoded, parsed, query=request.url.query, headers=dict(request.headers)
            )
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
            *install_routes(app),
            *probe_routes(app),
            *dashboard_routes(app),
        ],
    )
