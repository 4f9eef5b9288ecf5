"""A loopback emulator of the Slack Web API subset the bot uses, for end-to-end tests and `reap shell`.

It is a real HTTP/1.1 server (stdlib `ThreadingHTTPServer` on a daemon thread), so the unchanged
slack_sdk clients talk to it exactly as they talk to slack.com: JSON bodies for chat.* and views.*,
form bodies for conversations.open and files.*, GET + query string for users.info from the async
client. All state sits behind one lock; recorded data is handed out as copies.

Besides `/api/<method>` it serves `/webhook/<n>` (response_url sinks) and `/upload/<file_id>` (the
upload step of files_upload_v2). Those two are recorded in `calls` as methods "webhook" and "upload",
and `fail_next("webhook" | "upload", ...)` scripts faults for them too.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

_log = logging.getLogger(__name__)

MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
MESSAGE_TEXT_LIMIT = 40_000
VIEW_SIZE_LIMIT = 250_000
ALT_TEXT_LIMIT = 1000  # files.getUploadURLExternal: alt_txt_too_large beyond it

# JSON-valued fields slack_sdk sends as form strings (functions.completeSuccess sends its outputs so).
_JSON_FIELDS = ("blocks", "attachments", "view", "files", "metadata", "outputs")
_KNOWN_BLOCKS = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
_TOKEN = re.compile(r"^Bearer (xoxe\.)?(xox[bp]|xwfp)-\S+$")
# What oauth.v2.access says it granted (manifest.yml's bot scopes).
_GRANTED_SCOPES = ",".join(
    [
        "channels:join",
        "chat:write",
        "chat:write.public",
        "commands",
        "files:write",
        "im:history",
        "im:write",
        "users:read",
    ]
)
# App-level tokens (Socket Mode) may only open connections.
_APP_TOKEN = re.compile(r"^Bearer xapp-\S+$")
# zoneinfo only knows abbreviations; Slack's users.info spells the common ones out.
_TZ_LABELS = {
    "EST": "Eastern Standard Time",
    "EDT": "Eastern Daylight Time",
    "CST": "Central Standard Time",
    "CDT": "Central Daylight Time",
    "MST": "Mountain Standard Time",
    "MDT": "Mountain Daylight Time",
    "PST": "Pacific Standard Time",
    "PDT": "Pacific Daylight Time",
    "AKST": "Alaska Standard Time",
    "AKDT": "Alaska Daylight Time",
    "HST": "Hawaii-Aleutian Standard Time",
    "UTC": "Coordinated Universal Time",
    "GMT": "Greenwich Mean Time",
    "BST": "British Summer Time",
    "CET": "Central European Time",
    "CEST": "Central European Summer Time",
}


class LocalSlackError(Exception):
    """The emulator was used wrongly by test or console code (not a Slack API error)."""


class UnknownUserError(LocalSlackError):
    """A helper was asked about a user that was never added."""

    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        super().__init__(f"localslack has no user {user_id!r}; add it with add_user() first")


class UnknownResponseUrlError(LocalSlackError):
    """responses() was asked about a URL that response_url() never handed out."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(f"{url!r} is not a response_url handed out by this localslack")


class NotStartedError(LocalSlackError):
    """The server address was needed before start() bound the port."""

    def __init__(self) -> None:
        super().__init__("localslack is not running; call start() (or use it as a context manager)")


class BadIdError(LocalSlackError):
    """An id passed to a setup helper does not look like that kind of Slack id."""

    def __init__(self, kind: str, value: str, prefixes: str) -> None:
        self.kind = kind
        self.value = value
        super().__init__(f"{kind} id {value!r} must start with one of {prefixes}")


@dataclass
class Call:
    """One HTTP request the server received; `headers` keys are lower-case."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    at: float
    http_method: str = "POST"


@dataclass
class Message:
    """A message the bot posted (or shared a file with); chat.update bumps `edits`."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    metadata: dict[str, Any] | None
    user: str
    edits: int = 0
    subtype: str | None = None
    files: list[str] = field(default_factory=list)
    # The workspace whose token posted it (None for a token localslack never issued).
    team_id: str | None = None


@dataclass(frozen=True)
class Workspace:
    """A workspace Slack knows, alone or in an Enterprise Grid org."""

    team_id: str
    name: str
    enterprise_id: str | None = None
    enterprise_name: str | None = None


@dataclass
class _Grant:
    """A token localslack issued: whose it is, and whether it still works."""

    team_id: str | None
    enterprise_id: str | None
    is_enterprise_install: bool
    expires_at: float | None = None
    revoked: bool = False


@dataclass
class Fault:
    """One scripted misbehaviour for the next call of a method (see LocalSlack.fail_next)."""

    status: int = 200  # non-200: answer it, JSON {"ok": false} unless `body` is given
    error: str | None = None  # with status 200: answer {"ok": false, "error": error}
    retry_after: float | None = None  # Retry-After seconds (429s default to 1)
    delay: float = 0.0  # sleep first; with nothing else set the call then succeeds late
    drop: bool = False  # hang up without answering
    body: bytes | None = None  # raw body for a non-200 answer, e.g. an HTML error page
    deliver: bool = False  # handle the call for real first (an ambiguous send), then fail


@dataclass
class _User:
    id: str
    name: str
    tz: str
    real_name: str
    deleted: bool
    is_bot: bool
    email: str | None


@dataclass
class _Channel:
    """A channel and who is in it (the bot too): Slack's membership rules hang on this."""

    id: str
    name: str
    private: bool = False
    archived: bool = False
    members: set[str] = field(default_factory=set)


@dataclass
class _Trigger:
    expires_at: float
    used: bool = False


@dataclass
class _File:
    id: str
    filename: str
    length: int
    title: str | None = None
    alt_txt: str | None = None
    data: bytes | None = None
    channels: list[str] = field(default_factory=list)
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


@dataclass
class _Bucket:
    rate: float
    burst: float
    tokens: float
    stamp: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self) -> float:
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    """Raised inside method handlers to answer {"ok": false, "error": ...}."""

    def __init__(self, error: str, **extra: Any) -> None:
        self.error = error
        self.extra = extra
        super().__init__(error)


def _json_reply(payload: dict[str, Any], status: int = 200, **headers: str) -> _Reply:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Reply(status, body, headers=dict(headers))


def _text_reply(text: str, status: int = 200) -> _Reply:
    return _Reply(status, text.encode("utf-8"), "text/plain; charset=utf-8")


def _html_reply(status: int) -> _Reply:
    page = f"<html><body><h1>{status}</h1><p>Slack is having trouble.</p></body></html>"
    return _Reply(status, page.encode("utf-8"), "text/html; charset=utf-8")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _parse_params(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Merge query string and body (JSON or form) into one dict; raise _ApiError if unreadable."""
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    if body.strip():
        kind = content_type.split(";")[0].strip().lower()
        if kind == "application/json" or body.lstrip().startswith(b"{"):
            try:
                data = json.loads(body)
            except ValueError as exc:
                raise _ApiError("invalid_json") from exc
            if not isinstance(data, dict):
                raise _ApiError("invalid_json")
            params.update(data)
        elif kind.startswith("multipart/"):
            raise _ApiError("invalid_form_data")
        else:
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            params.update({k: v[-1] for k, v in form.items()})
    for key in _JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            # Left as a string when it is not JSON, so validation reports the bad format.
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _check_auth(header: str | None) -> str | None:
    if not header:
        return "not_authed"
    return None if _TOKEN.match(header.strip()) else "invalid_auth"


def _pointer(where: str) -> str:
    return f"[json-pointer:{where}]"


def _text_problems(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"must be a text object {_pointer(where)}"]
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        return [f"must be one of {', '.join(allowed)} {_pointer(where + '/type')}"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"must be more than 0 characters {_pointer(where + '/text')}"]
    if len(text) > limit:
        return [f"must be less than {limit + 1} characters {_pointer(where + '/text')}"]
    return []


def _max_len(value: Any, limit: int, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, str) or len(value) > limit:
        return [f"must be a string of at most {limit} characters {_pointer(where)}"]
    return []


def _options_problems(options: Any, where: str, low: int, high: int) -> list[str]:
    if not isinstance(options, list) or not low <= len(options) <= high:
        return [f"must have {low} to {high} options {_pointer(where)}"]
    problems: list[str] = []
    for i, option in enumerate(options):
        spot = f"{where}/{i}"
        if not isinstance(option, dict):
            problems.append(f"must be an option object {_pointer(spot)}")
            continue
        problems += _text_problems(option.get("text"), spot + "/text", 75)
        problems += _max_len(option.get("value"), 150, spot + "/value")
    return problems


def _confirm_problems(confirm: Any, where: str) -> list[str]:
    if confirm is None:
        return []
    if not isinstance(confirm, dict):
        return [f"must be a confirm object {_pointer(where)}"]
    return (
        _text_problems(confirm.get("title"), where + "/title", 100, plain_only=True)
        + _text_problems(confirm.get("text"), where + "/text", 300)
        + _text_problems(confirm.get("confirm"), where + "/confirm", 30, plain_only=True)
        + _text_problems(confirm.get("deny"), where + "/deny", 30, plain_only=True)
    )


def _element_problems(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"must be an element with a type {_pointer(where)}"]
    kind = element["type"]
    problems = _max_len(element.get("action_id"), 255, where + "/action_id")
    problems += _confirm_problems(element.get("confirm"), where + "/confirm")
    if "placeholder" in element:
        problems += _text_problems(element["placeholder"], where + "/placeholder", 150)
    if kind == "button":
        problems += _text_problems(element.get("text"), where + "/text", 75, plain_only=True)
        problems += _max_len(element.get("value"), 2000, where + "/value")
        problems += _max_len(element.get("url"), 3000, where + "/url")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"must be primary or danger {_pointer(where + '/style')}")
    elif kind in ("static_select", "multi_static_select"):
        has_options, has_groups = "options" in element, "option_groups" in element
        if has_options == has_groups:
            problems.append(f"must provide exactly one of options, option_groups {_pointer(where)}")
        elif has_options:
            problems += _options_problems(element["options"], where + "/options", 1, 100)
    elif kind == "overflow":
        problems += _options_problems(element.get("options"), where + "/options", 1, 5)
    return problems


def _section_problems(block: dict[str, Any], where: str) -> list[str]:
    if "text" not in block and "fields" not in block:
        return [f"must provide text or fields {_pointer(where)}"]
    problems: list[str] = []
    if "text" in block:
        problems += _text_problems(block["text"], where + "/text", 3000)
    if "fields" in block:
        fields = block["fields"]
        if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
            problems.append(f"must have 1 to 10 fields {_pointer(where + '/fields')}")
        else:
            for i, item in enumerate(fields):
                problems += _text_problems(item, f"{where}/fields/{i}", 2000)
    if "accessory" in block:
        problems += _element_problems(block["accessory"], where + "/accessory")
    return problems


def _actions_problems(block: dict[str, Any], where: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
        return [f"must have 1 to 25 elements {_pointer(where + '/elements')}"]
    problems: list[str] = []
    action_ids: set[str] = set()
    for i, element in enumerate(elements):
        problems += _element_problems(element, f"{where}/elements/{i}")
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str):
            if action_id in action_ids:
                problems.append(f"duplicate action_id {_pointer(f'{where}/elements/{i}')}")
            action_ids.add(action_id)
    return problems


def _context_problems(block: dict[str, Any], where: str) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
        return [f"must have 1 to 10 elements {_pointer(where + '/elements')}"]
    problems: list[str] = []
    for i, element in enumerate(elements):
        spot = f"{where}/elements/{i}"
        if isinstance(element, dict) and element.get("type") == "image":
            problems += _max_len(element.get("alt_text"), 2000, spot + "/alt_text")
        else:
            problems += _text_problems(element, spot, 3000)
    return problems


def _header_problems(block: dict[str, Any], where: str) -> list[str]:
    return _text_problems(block.get("text"), where + "/text", 150, plain_only=True)


def _image_problems(block: dict[str, Any], where: str) -> list[str]:
    problems = _max_len(block.get("image_url"), 3000, where + "/image_url")
    if not isinstance(block.get("alt_text"), str) or not block["alt_text"]:
        problems.append(f"must provide alt_text {_pointer(where + '/alt_text')}")
    return problems + _max_len(block.get("alt_text"), 2000, where + "/alt_text")


def _input_problems(block: dict[str, Any], where: str) -> list[str]:
    problems = _text_problems(block.get("label"), where + "/label", 2000, plain_only=True)
    if "hint" in block:
        problems += _text_problems(block["hint"], where + "/hint", 2000, plain_only=True)
    return problems + _element_problems(block.get("element"), where + "/element")


def _markdown_problems(block: dict[str, Any], where: str) -> list[str]:
    text = block.get("text")
    if not isinstance(text, str) or not 0 < len(text) <= 12000:
        return [f"must be 1 to 12000 characters {_pointer(where + '/text')}"]
    return []


_BLOCK_CHECKS: dict[str, Callable[[dict[str, Any], str], list[str]]] = {
    "section": _section_problems,
    "actions": _actions_problems,
    "context": _context_problems,
    "header": _header_problems,
    "image": _image_problems,
    "input": _input_problems,
    "markdown": _markdown_problems,
}


def block_problems(blocks: Any, limit: int, *, deep: bool = True) -> list[str]:
    """Slack-style complaints about a blocks array (empty when Slack would accept it)."""
    if not isinstance(blocks, list):
        return [f"must be a JSON array of blocks {_pointer('/blocks')}"]
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed {_pointer('/blocks')}")
    if not deep:
        return problems
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        if not isinstance(block, dict) or block.get("type") not in _KNOWN_BLOCKS:
            problems.append(f"unknown or missing block type {_pointer(where + '/type')}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not 0 < len(block_id) <= 255:
                problems.append(f"must be 1 to 255 characters {_pointer(where + '/block_id')}")
            elif block_id in block_ids:
                problems.append(f"duplicate block_id {_pointer(where + '/block_id')}")
            else:
                block_ids.add(block_id)
        check = _BLOCK_CHECKS.get(block["type"])
        if check is not None:
            problems += check(block, where)
    return problems


def view_problems(view: Any, kinds: Iterable[str], *, deep: bool = True) -> list[str]:
    """Slack-style complaints about a modal or home view (empty when Slack would accept it)."""
    if not isinstance(view, dict):
        return ["view must be a JSON object"]
    allowed = tuple(kinds)
    if view.get("type") not in allowed:
        return [f"must be one of {', '.join(allowed)} {_pointer('/view/type')}"]
    problems: list[str] = []
    if view["type"] == "modal":
        problems += _text_problems(view.get("title"), "/view/title", 24, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                problems += _text_problems(view[key], f"/view/{key}", 24, plain_only=True)
    problems += _max_len(view.get("private_metadata"), 3000, "/view/private_metadata")
    problems += _max_len(view.get("callback_id"), 255, "/view/callback_id")
    problems += _max_len(view.get("external_id"), 255, "/view/external_id")
    if "blocks" not in view:
        return [*problems, f"must provide blocks {_pointer('/view/blocks')}"]
    return problems + block_problems(view["blocks"], VIEW_BLOCK_LIMIT, deep=deep)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], slack: LocalSlack) -> None:
        self.slack = slack
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-response is routine here (drops, timeouts, shutdown).
        _log.debug("localslack connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; Nagle would stall each reply ~40 ms.
    disable_nagle_algorithm = True
    timeout = 120

    def setup(self) -> None:
        super().setup()
        self._slack().connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._slack().connection_closed(self.connection)

    def _slack(self) -> LocalSlack:
        server = self.server
        assert isinstance(server, _Server)
        return server.slack

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("localslack %s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(_text_reply("bad request body", 400))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self._slack().route(self.command, self.path, headers, body)
        if reply is None:
            self._drop()
        else:
            self._send(reply)

    def _send(self, reply: _Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class LocalSlack:
    """An in-process Slack Web API on a loopback port, with recording and fault injection."""

    def __init__(
        self,
        *,
        team_id: str = "T0REAP",
        team_name: str = "City of Philadelphia",
        bot_user_id: str = "U0REAPBOT",
        bot_id: str = "B0REAPBOT",
        app_id: str = "A0REAPAPP",
        host: str = "127.0.0.1",
        port: int = 0,
        workspace_rate: float | None = None,
        channel_rate: float | None = None,
        random_429: float = 0.0,
        seed: int = 0,
        trigger_ttl: float = 3.0,
        validate_blocks: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if workspace_rate is not None and workspace_rate <= 0:
            raise ValueError("workspace_rate must be positive (or None for no limit)")
        if channel_rate is not None and channel_rate <= 0:
            raise ValueError("channel_rate must be positive (or None for no limit)")
        self.team_id = team_id
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.workspace_rate = workspace_rate
        self.channel_rate = channel_rate
        self.random_429 = random_429
        self.trigger_ttl = trigger_ttl
        # Where apps.connections.open sends a Socket Mode client (a test's WebSocket server).
        self.socket_url: str | None = None
        self.validate_blocks = validate_blocks
        self._host = host
        self._port = port
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._open_sockets: set[socket.socket] = set()
        self._connections = 0
        self._last_ts_us = 0
        self._counter = 0
        # Setup state, kept by reset().
        self._users: dict[str, _User] = {}
        self._channels: dict[str, _Channel] = {}
        self._dm_of: dict[str, str] = {}
        self._dm_owner: dict[str, str] = {}
        self._sink_urls: set[str] = set()
        self._sink_count = 0
        self._outage: int | None = None
        # OAuth: the app's credentials, the workspaces and orgs that may install it, the tokens issued.
        self.client_id = "1111.2222"
        self.client_secret = "localslack-client-secret"
        self.redirect_url: str | None = None
        self.token_rotation = False
        self.token_lifetime = 43_200.0
        self.installing = team_id  # who approves the next /oauth/v2/authorize (a team or org id)
        self._workspaces: dict[str, Workspace] = {team_id: Workspace(team_id, team_name)}
        self._grants: dict[str, _Grant] = {}
        self._refresh: dict[str, str] = {}
        self._codes: dict[str, tuple[str, str | None]] = {}
        self._caller: _Grant | None = None
        self._init_recorded()
        self.add_user(bot_user_id, "reap", real_name="REAP Tracker", is_bot=True)

    def _init_recorded(self) -> None:
        self._calls: list[Call] = []
        self._messages: list[Message] = []
        self._by_key: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._views: dict[str, dict[str, Any]] = {}
        self._external: dict[str, str] = {}
        self._home: dict[str, str] = {}
        self._files: dict[str, _File] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._responses: list[tuple[str, dict[str, Any]]] = []
        self._function_results: dict[str, dict[str, Any]] = {}
        self._executions: set[str] = set()
        self._workspace_bucket: _Bucket | None = None
        self._channel_buckets: dict[str, _Bucket] = {}
        self.rate_limited_count = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalSlack:
        """Bind the port and serve on a daemon thread; returns self."""
        if self._server is not None:
            raise LocalSlackError("localslack is already running")
        self._server = _Server((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # stop() waits up to one poll
            name=f"localslack:{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and hang up every open keep-alive connection (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            sockets = list(self._open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LocalSlack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        """http://HOST:PORT of the running server."""
        if self._server is None:
            raise NotStartedError()
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The Web API base URL to give slack_sdk clients (SLACK_API_URL)."""
        return self.root_url + "/api/"

    @property
    def connection_count(self) -> int:
        """How many TCP connections clients have opened so far (keep-alive reuses one)."""
        with self._lock:
            return self._connections

    def connection_opened(self, sock: socket.socket) -> None:
        """Track a client connection so stop() can hang it up."""
        with self._lock:
            self._connections += 1
            self._open_sockets.add(sock)

    def connection_closed(self, sock: socket.socket) -> None:
        """Forget a client connection that has ended."""
        with self._lock:
            self._open_sockets.discard(sock)

    # -- setup helpers -----------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        tz: str = "America/New_York",
        real_name: str | None = None,
        deleted: bool = False,
        is_bot: bool = False,
        email: str | None = None,
    ) -> None:
        """Add (or replace) a workspace member; their DM channel id stays the same."""
        if not user_id.startswith(("U", "W")):
            raise BadIdError("user", user_id, "U, W")
        ZoneInfo(tz)  # fail here, not inside a request, on a zone typo
        with self._lock:
            self._users[user_id] = _User(user_id, name, tz, real_name or name, deleted, is_bot, email)

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        private: bool | None = None,
        member: bool = False,
        archived: bool = False,
    ) -> None:
        """Add (or replace) a channel; `private` defaults to whether the id starts with G.

        As in Slack, the bot starts outside every channel unless `member` says it was invited. In a
        public channel it may still post (chat:write.public) but not share files, and it may join
        by itself (conversations.join); in a private one it can do neither until invited.
        """
        if not channel_id.startswith(("C", "G")):
            raise BadIdError("channel", channel_id, "C, G")
        with self._lock:
            self._channels[channel_id] = _Channel(
                channel_id,
                name.lstrip("#"),
                private=channel_id.startswith("G") if private is None else private,
                archived=archived,
                members={self.bot_user_id} if member else set(),
            )

    def invite(self, channel_id: str, user_id: str | None = None) -> None:
        """Add a member to a channel (`/invite`); the bot when no user is named."""
        with self._lock:
            channel = self._channels.get(channel_id)
            if channel is None:
                raise LocalSlackError(f"localslack has no channel {channel_id!r}; add it with add_channel()")
            channel.members.add(user_id or self.bot_user_id)

    def is_member(self, channel_id: str, user_id: str | None = None) -> bool:
        """Whether the user (the bot when none is named) is in the channel."""
        with self._lock:
            channel = self._channels.get(channel_id)
            return channel is not None and (user_id or self.bot_user_id) in channel.members

    def dm_channel(self, user_id: str) -> str:
        """The D... id conversations.open returns for this user (stable for the server's life)."""
        with self._lock:
            if user_id not in self._users:
                raise UnknownUserError(user_id)
            return self._dm_id(user_id)

    def response_url(self) -> str:
        """A fresh response_url sink on this server."""
        with self._lock:
            self._sink_count += 1
            url = f"{self.root_url}/webhook/{self._sink_count}"
            self._sink_urls.add(url)
            return url

    def new_trigger_id(self) -> str:
        """Register a trigger_id valid for trigger_ttl seconds and usable once."""
        with self._lock:
            n = self._next()
            trigger_id = f"{n}.{int(time.time())}.{uuid.uuid4().hex}"
            self._triggers[trigger_id] = _Trigger(self._clock() + self.trigger_ttl)
            return trigger_id

    def fail_next(self, method: str, fault: Fault, *, times: int = 1) -> None:
        """Script `fault` for the next `times` calls of `method` (FIFO per method)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            queue = self._faults.setdefault(method, deque())
            queue.extend(replace(fault) for _ in range(times))

    def pending_faults(self, method: str) -> int:
        """How many scripted faults are still waiting for `method`."""
        with self._lock:
            return len(self._faults.get(method, ()))

    def set_outage(self, status: int | None) -> None:
        """While set, every /api/ call answers `status` with an HTML page; None ends the outage."""
        with self._lock:
            self._outage = status

    # -- OAuth, many workspaces, Grid orgs, workflow steps -------------------------------------

    def add_workspace(
        self, team_id: str, name: str, *, enterprise_id: str | None = None, enterprise_name: str | None = None
    ) -> Workspace:
        """A workspace that may install the app (in an org when `enterprise_id` is given)."""
        with self._lock:
            place = Workspace(team_id, name, enterprise_id, enterprise_name)
            self._workspaces[team_id] = place
            return place

    def authorize(self, state: str, *, redirect_uri: str | None = None, installer: str = "U0ADMIN") -> str:
        """What Slack's authorize page does once the installer approves: the redirect URL (with a
        fresh code and the state) for whoever `installing` names, a workspace or an org."""
        with self._lock:
            target = redirect_uri or self.redirect_url
            if not target:
                raise LocalSlackError("no redirect URL: set localslack.redirect_url")
            code = f"code-{uuid.uuid4().hex[:16]}"
            self._codes[code] = (self.installing, installer)
            sep = "&" if "?" in target else "?"
            return f"{target}{sep}code={code}&state={state}"

    def uninstall(self, team_or_org: str) -> None:
        """Revoke every token of a workspace or org (Slack then sends app_uninstalled)."""
        with self._lock:
            for grant in self._grants.values():
                if team_or_org in (grant.team_id, grant.enterprise_id):
                    grant.revoked = True

    def expire_tokens(self) -> None:
        """Make every rotating token issued so far expire now."""
        with self._lock:
            for grant in self._grants.values():
                if grant.expires_at is not None:
                    grant.expires_at = self._clock() - 1

    def tokens_of(self, team_or_org: str) -> list[str]:
        """The working tokens issued to a workspace or org."""
        with self._lock:
            return [
                token
                for token, g in self._grants.items()
                if team_or_org in (g.team_id, g.enterprise_id) and not g.revoked
            ]

    def function_executed(
        self,
        callback_id: str,
        inputs: dict[str, Any],
        *,
        team_id: str,
        enterprise_id: str | None = None,
    ) -> dict[str, Any]:
        """A function_executed event as Slack sends it when a workflow reaches our custom step,
        with a workflow token (xwfp-) good for that workspace until the step completes."""
        with self._lock:
            self._counter += 1
            execution = f"Fx{self._counter:08d}"
            token = f"xwfp-{uuid.uuid4().hex[:24]}"
            self._grants[token] = _Grant(team_id, enterprise_id, False)
            self._executions.add(execution)
            return {
                "type": "function_executed",
                "function": {
                    "id": f"Fn{self._counter:08d}",
                    "callback_id": callback_id,
                    "title": callback_id,
                    "app_id": self.app_id,
                    "type": "app",
                    "input_parameters": [],
                    "output_parameters": [],
                    "date_created": 1700000000,
                    "date_updated": 1700000000,
                },
                "inputs": copy.deepcopy(inputs),
                "function_execution_id": execution,
                "workflow_execution_id": f"Wx{self._counter:08d}",
                "event_ts": f"{int(time.time())}.000100",
                "bot_access_token": token,
            }

    def function_result(self, execution_id: str) -> dict[str, Any] | None:
        """How a step ended: {"outputs": ...} or {"error": ...}; None while it runs."""
        with self._lock:
            return copy.deepcopy(self._function_results.get(execution_id))

    def _serve_authorize(self, query: str) -> _Reply:
        fields = {k: v[0] for k, v in parse_qs(query).items()}
        if fields.get("client_id") != self.client_id:
            return _text_reply("invalid_client_id", 400)
        location = self.authorize(fields.get("state", ""), redirect_uri=fields.get("redirect_uri"))
        return _Reply(302, b"", "text/plain; charset=utf-8", {"Location": location})

    def _grant_of(self, header: str | None) -> _Grant | None:
        token = (header or "").strip().removeprefix("Bearer ")
        return self._grants.get(token)

    def _grant_error(self, header: str | None) -> str | None:
        grant = self._grant_of(header)
        if grant is None:
            return None  # a token set up by hand (SLACK_BOT_TOKEN): the default workspace
        if grant.revoked:
            return "token_revoked"
        if grant.expires_at is not None and grant.expires_at <= self._clock():
            return "token_expired"
        return None

    def _issue(self, grant: _Grant) -> dict[str, Any]:
        rotating = self.token_rotation
        token = f"{'xoxe.' if rotating else ''}xoxb-{uuid.uuid4().hex[:24]}"
        if rotating:
            grant.expires_at = self._clock() + self.token_lifetime
        self._grants[token] = grant
        answer: dict[str, Any] = {"access_token": token, "token_type": "bot"}
        if rotating:
            refresh = f"xoxe-1-{uuid.uuid4().hex[:24]}"
            self._refresh[refresh] = token
            answer |= {"refresh_token": refresh, "expires_in": int(self.token_lifetime)}
        return answer

    def _oauth_access(self, header: str | None, params: dict[str, Any]) -> _Reply:
        client_id, secret = params.get("client_id"), params.get("client_secret")
        if header and header.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return _json_reply({"ok": False, "error": "invalid_client_id"})
        if client_id != self.client_id:
            return _json_reply({"ok": False, "error": "invalid_client_id"})
        if secret != self.client_secret:
            return _json_reply({"ok": False, "error": "bad_client_secret"})
        if params.get("grant_type") == "refresh_token":
            old = self._refresh.pop(str(params.get("refresh_token") or ""), None)
            grant = self._grants.get(old or "")
            if grant is None or grant.revoked:
                return _json_reply({"ok": False, "error": "invalid_refresh_token"})
            grant.revoked = True
            fresh = _Grant(grant.team_id, grant.enterprise_id, grant.is_enterprise_install)
            return _json_reply({"ok": True, **self._issue(fresh), "team": {"id": grant.team_id}})
        found = self._codes.pop(str(params.get("code") or ""), None)
        if found is None:
            return _json_reply({"ok": False, "error": "invalid_code"})
        target, installer = found
        place = self._workspaces.get(target)
        org_members = [w for w in self._workspaces.values() if w.enterprise_id == target]
        if place is None and not org_members:
            return _json_reply({"ok": False, "error": "invalid_team"})
        if place is not None:
            grant = _Grant(place.team_id, place.enterprise_id, False)
            team = {"id": place.team_id, "name": place.name}
            enterprise = (
                {"id": place.enterprise_id, "name": place.enterprise_name} if place.enterprise_id else None
            )
        else:
            grant = _Grant(None, target, True)
            team = None
            enterprise = {"id": target, "name": org_members[0].enterprise_name or target}
        return _json_reply(
            {
                "ok": True,
                **self._issue(grant),
                "scope": _GRANTED_SCOPES,
                "bot_user_id": self.bot_user_id,
                "app_id": self.app_id,
                "team": team,
                "enterprise": enterprise,
                "is_enterprise_install": grant.is_enterprise_install,
                "authed_user": {"id": installer},
            }
        )

    def reset(self) -> None:
        """Forget calls, messages, views, files, faults and limits; keep users, channels, DMs."""
        with self._lock:
            self._init_recorded()
            self._outage = None

    # -- inspection --------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return copy.deepcopy(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        """The recorded calls of one method."""
        with self._lock:
            return copy.deepcopy([c for c in self._calls if c.method == method])

    def messages(self, channel: str | None = None) -> list[Message]:
        """Messages the bot posted, oldest first; `channel` may be a C/G/D id, #name or U id."""
        with self._lock:
            wanted = None if channel is None else self._resolve(channel)
            if channel is not None and wanted is None:
                return []
            return copy.deepcopy([m for m in self._messages if wanted is None or m.channel == wanted])

    def dms_to(self, user_id: str) -> list[Message]:
        """Messages the bot posted in its DM with this user."""
        with self._lock:
            if user_id not in self._users:
                raise UnknownUserError(user_id)
            dm = self._dm_of.get(user_id)
            return copy.deepcopy([m for m in self._messages if m.channel == dm])

    def ephemerals(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """chat.postEphemeral records {channel, user, text, blocks, thread_ts, ts}."""
        with self._lock:
            if user_id is not None and user_id not in self._users:
                raise UnknownUserError(user_id)
            return copy.deepcopy([e for e in self._ephemerals if user_id is None or e["user"] == user_id])

    def views(self) -> dict[str, dict[str, Any]]:
        """Every open/pushed/published view by view id."""
        with self._lock:
            return copy.deepcopy(self._views)

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The App Home view last published for this user."""
        with self._lock:
            view_id = self._home.get(user_id)
            return None if view_id is None else copy.deepcopy(self._views[view_id])

    def files(self) -> list[dict[str, Any]]:
        """Completed uploads: id, filename, title, alt_txt, bytes, channels, thread_ts, initial_comment."""
        with self._lock:
            return [
                {
                    "id": f.id,
                    "filename": f.filename,
                    "title": f.title,
                    "alt_txt": f.alt_txt,
                    "bytes": f.data,
                    "channels": list(f.channels),
                    "thread_ts": f.thread_ts,
                    "initial_comment": f.initial_comment,
                }
                for f in self._files.values()
                if f.completed
            ]

    def responses(self, url: str | None = None) -> list[dict[str, Any]]:
        """JSON bodies POSTed to response_url sinks (all of them, or one URL's), oldest first."""
        with self._lock:
            if url is not None and url not in self._sink_urls:
                raise UnknownResponseUrlError(url)
            return copy.deepcopy([b for u, b in self._responses if url is None or u == url])

    # -- HTTP entry point --------------------------------------------------------------------

    def route(self, verb: str, target: str, headers: dict[str, str], body: bytes) -> _Reply | None:
        """Answer one HTTP request; None means hang up without answering."""
        parts = urlsplit(target)
        path = parts.path
        try:
            if path.startswith("/api/"):
                return self._serve_api(verb, path[len("/api/") :], parts.query, headers, body)
            if path.startswith("/webhook/") and verb == "POST":
                return self._serve_sink(path, headers, body)
            if path.startswith("/upload/") and verb == "POST":
                return self._serve_upload(path[len("/upload/") :], headers, body)
            if path == "/oauth/v2/authorize" and verb == "GET":
                return self._serve_authorize(parts.query)
        except Exception:
            _log.exception("localslack failed on %s %s", verb, path)
            return _json_reply({"ok": False, "error": "internal_error"}, 500)
        return _text_reply("not found", 404)

    def _record(self, method: str, params: dict[str, Any], headers: dict[str, str], verb: str) -> None:
        self._calls.append(Call(method, copy.deepcopy(params), headers, self._clock(), verb))

    def _pop_fault(self, method: str) -> Fault | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    def _fault_reply(self, fault: Fault) -> _Reply:
        """The answer for a fault with a non-200 status: Slack's JSON error, or the raw body."""
        headers: dict[str, str] = {}
        if fault.status == 429 or fault.retry_after is not None:
            wait = 1.0 if fault.retry_after is None else fault.retry_after
            headers["Retry-After"] = str(max(0, math.ceil(wait)))
        if fault.body is not None:
            try:
                json.loads(fault.body)
                kind = "application/json; charset=utf-8"
            except ValueError:
                kind = "text/html; charset=utf-8"
            return _Reply(fault.status, fault.body, kind, headers)
        default = {429: "ratelimited", 503: "service_unavailable"}.get(
            fault.status, "internal_error" if fault.status >= 500 else "invalid_request"
        )
        return _json_reply({"ok": False, "error": fault.error or default}, fault.status, **headers)

    def _apply_fault(self, fault: Fault | None, deliver: Callable[[], _Reply]) -> tuple[bool, _Reply | None]:
        """(True, answer) when the fault decides the answer (None = hang up), else (False, None)."""
        if fault is None:
            return False, None
        if fault.delay > 0:
            time.sleep(fault.delay)
        delivered = deliver() if fault.deliver else None
        if fault.drop:
            return True, None
        if fault.status != 200:
            if fault.status == 429:
                with self._lock:
                    self.rate_limited_count += 1
            return True, self._fault_reply(fault)
        if fault.error is not None:
            return True, _json_reply({"ok": False, "error": fault.error})
        if delivered is not None:
            return True, delivered
        return False, None

    def _serve_api(
        self, verb: str, method: str, query: str, headers: dict[str, str], body: bytes
    ) -> _Reply | None:
        try:
            params = _parse_params(query, headers.get("content-type", ""), body)
            bad_body: _ApiError | None = None
        except _ApiError as exc:
            params, bad_body = {}, exc
        with self._lock:
            self._record(method, params, headers, verb)
            if self._outage is not None:
                return _html_reply(self._outage)
            header = headers.get("authorization")
            if method == "oauth.v2.access":
                return self._oauth_access(header, params)
            app_token = method == "apps.connections.open" and bool(_APP_TOKEN.match((header or "").strip()))
            auth_error = None if app_token else _check_auth(header) or self._grant_error(header)
            if auth_error is not None:
                return _json_reply({"ok": False, "error": auth_error})
            if bad_body is not None:
                return _json_reply({"ok": False, "error": bad_body.error})
            fault = self._pop_fault(method)

        def deliver() -> _Reply:
            with self._lock:
                self._caller = self._grant_of(header)
                return self._dispatch(method, params)

        decided, answer = self._apply_fault(fault, deliver)
        if decided:
            return answer
        with self._lock:
            if method == "chat.postMessage":
                limited = self._rate_limit(params.get("channel"))
                if limited is not None:
                    return limited
            self._caller = self._grant_of(header)
            return self._dispatch(method, params)

    def _serve_sink(self, path: str, headers: dict[str, str], body: bytes) -> _Reply | None:
        url = self.root_url + path
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with self._lock:
            self._record("webhook", payload if isinstance(payload, dict) else {}, headers, "POST")
            fault = self._pop_fault("webhook")
        decided, answer = self._apply_fault(fault, lambda: _text_reply("ok"))
        if decided:
            return answer
        with self._lock:
            if url not in self._sink_urls:
                return _text_reply("no_service", 404)
            if not isinstance(payload, dict):
                return _text_reply("invalid_payload", 400)
            self._responses.append((url, payload))
        return _text_reply("ok")

    def _serve_upload(self, file_id: str, headers: dict[str, str], body: bytes) -> _Reply | None:
        with self._lock:
            self._record("upload", {"file_id": file_id, "length": len(body)}, headers, "POST")
            fault = self._pop_fault("upload")
        decided, answer = self._apply_fault(fault, lambda: _text_reply(f"OK - {len(body)}"))
        if decided:
            return answer
        with self._lock:
            entry = self._files.get(file_id)
            if entry is None:
                return _text_reply("file_not_found", 404)
            entry.data = body
        return _text_reply(f"OK - {len(body)}")

    def _dispatch(self, method: str, params: dict[str, Any]) -> _Reply:
        handler = _METHODS.get(method)
        if handler is None:
            return _json_reply({"ok": False, "error": "unknown_method", "req_method": method})
        try:
            payload = handler(self, params)
        except _ApiError as exc:
            return _json_reply({"ok": False, "error": exc.error, **exc.extra})
        return _json_reply({"ok": True, **payload})

    def _rate_limit(self, channel: Any) -> _Reply | None:
        now = self._clock()
        wait = 0.0
        if self.random_429 > 0 and self._rng.random() < self.random_429:
            wait = 1.0
        buckets: list[_Bucket] = []
        if self.workspace_rate is not None:
            if self._workspace_bucket is None:
                burst = max(1.0, self.workspace_rate)
                self._workspace_bucket = _Bucket(self.workspace_rate, burst, burst, now)
            buckets.append(self._workspace_bucket)
        if self.channel_rate is not None:
            key = self._resolve(str(channel or "")) or str(channel)
            bucket = self._channel_buckets.get(key)
            if bucket is None:
                bucket = self._channel_buckets[key] = _Bucket(self.channel_rate, 1.0, 1.0, now)
            buckets.append(bucket)
        for bucket in buckets:
            bucket.refill(now)
            wait = max(wait, bucket.wait())
        if wait > 0:
            self.rate_limited_count += 1
            retry_after = str(max(1, math.ceil(wait)))
            return _json_reply({"ok": False, "error": "ratelimited"}, 429, **{"Retry-After": retry_after})
        for bucket in buckets:
            bucket.tokens -= 1
        return None

    # -- state helpers (call with the lock held) -------------------------------------------

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _new_ts(self) -> str:
        micros = max(time.time_ns() // 1000, self._last_ts_us + 1)
        self._last_ts_us = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _dm_id(self, user_id: str) -> str:
        dm = self._dm_of.get(user_id)
        if dm is None:
            dm = "D" + user_id[1:]
            while dm in self._dm_owner:
                dm += "X"
            self._dm_of[user_id] = dm
            self._dm_owner[dm] = user_id
        return dm

    def _resolve(self, ref: str) -> str | None:
        """A channel id for a C/G/D id, #name or U id; None when there is no such channel."""
        if ref.startswith(("U", "W")):
            return self._dm_id(ref) if ref in self._users else None
        if ref in self._channels or ref in self._dm_owner:
            return ref
        name = ref.lstrip("#")
        return next((cid for cid, c in self._channels.items() if c.name == name), None)

    def _postable_channel(self, ref: Any, *, share: bool = False) -> str:
        """The channel a post (or, with `share`, a file share) may go to, or Slack's refusal."""
        if not isinstance(ref, str) or not ref:
            raise _ApiError("channel_not_found")
        channel = self._resolve(ref)
        if channel is None:
            raise _ApiError("channel_not_found")
        owner = self._dm_owner.get(channel)
        if owner is not None and self._users[owner].deleted:
            raise _ApiError("account_inactive")
        found = self._channels.get(channel)
        if found is not None:
            if found.archived:
                raise _ApiError("is_archived")
            # chat:write.public lets a bot post into a public channel it is not in, never share
            # a file there, and a private channel it is not in is closed to both.
            if self.bot_user_id not in found.members and (found.private or share):
                raise _ApiError("not_in_channel")
        return channel

    def _user(self, user_id: Any) -> _User:
        user = self._users.get(user_id) if isinstance(user_id, str) else None
        if user is None:
            raise _ApiError("user_not_found")
        return user

    def _check_message_content(self, params: dict[str, Any], *, require: bool) -> None:
        text = params.get("text")
        if text is not None and not isinstance(text, str):
            text = str(text)
        blocks = params.get("blocks")
        if require and not text and not blocks:
            raise _ApiError("no_text")
        if text is not None and len(text) > MESSAGE_TEXT_LIMIT:
            raise _ApiError("msg_too_long")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise _ApiError("invalid_blocks_format")
            problems = block_problems(blocks, MESSAGE_BLOCK_LIMIT, deep=self.validate_blocks)
            if problems:
                raise _ApiError(
                    "invalid_blocks",
                    errors=problems,
                    response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
                )
        metadata = params.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload", {}), dict)
        ):
            raise _ApiError("invalid_metadata_format")

    def _message_json(self, m: Message) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "message",
            "text": m.text,
            "user": m.user,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": m.ts,
            "blocks": m.blocks,
        }
        if m.subtype:
            data["subtype"] = m.subtype
        if m.thread_ts:
            data["thread_ts"] = m.thread_ts
        if m.metadata is not None:
            data["metadata"] = m.metadata
        if m.edits:
            data["edited"] = {"user": m.user, "ts": m.ts}
        if m.files:
            data["files"] = [{"id": file_id} for file_id in m.files]
        return data

    def _add_message(self, message: Message) -> None:
        if message.team_id is None and self._caller is not None:
            message.team_id = self._caller.team_id or self._caller.enterprise_id
        self._messages.append(message)
        self._by_key[(message.channel, message.ts)] = message

    def _user_json(self, user: _User) -> dict[str, Any]:
        zone = ZoneInfo(user.tz)
        local = datetime.now(UTC).astimezone(zone)
        offset = local.utcoffset()
        abbreviation = local.tzname() or user.tz
        profile: dict[str, Any] = {
            "real_name": user.real_name,
            "real_name_normalized": user.real_name,
            "display_name": user.name,
            "display_name_normalized": user.name,
        }
        if user.email is not None:
            profile["email"] = user.email
        return {
            "id": user.id,
            "team_id": self.team_id,
            "name": user.name,
            "real_name": user.real_name,
            "deleted": user.deleted,
            "is_bot": user.is_bot,
            "is_app_user": False,
            "is_admin": False,
            "tz": user.tz,
            "tz_label": _TZ_LABELS.get(abbreviation, abbreviation),
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "profile": profile,
            "updated": int(time.time()),
        }

    def _take_trigger(self, trigger_id: Any) -> None:
        trigger = self._triggers.get(trigger_id) if isinstance(trigger_id, str) else None
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger.used:
            raise _ApiError("exchanged_trigger_id")
        if self._clock() > trigger.expires_at:
            raise _ApiError("expired_trigger_id")
        trigger.used = True

    def _checked_view(self, view: Any, kinds: tuple[str, ...]) -> dict[str, Any]:
        if isinstance(view, dict) and len(json.dumps(view)) > VIEW_SIZE_LIMIT:
            raise _ApiError("view_too_large")
        problems = view_problems(view, kinds, deep=self.validate_blocks)
        if problems:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
            )
        assert isinstance(view, dict)
        return view

    def _store_view(
        self, view: dict[str, Any], *, view_id: str | None = None, root: str | None = None
    ) -> dict[str, Any]:
        n = self._next()
        view_id = view_id or f"V{n:010d}"
        stored: dict[str, Any] = {
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            **copy.deepcopy(view),
            "id": view_id,
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{n:08x}",
            "root_view_id": root or view_id,
            "previous_view_id": None,
        }
        old = self._views.get(view_id)
        if old is not None and old.get("external_id"):
            self._external.pop(old["external_id"], None)
        if stored["external_id"]:
            self._external[stored["external_id"]] = view_id
        self._views[view_id] = stored
        return stored

    def _new_view(self, view: dict[str, Any]) -> dict[str, Any]:
        external_id = view.get("external_id")
        if external_id and external_id in self._external:
            raise _ApiError("duplicate_external_id")
        return self._store_view(view)

    def _file(self, file_id: Any) -> _File:
        entry = self._files.get(file_id) if isinstance(file_id, str) else None
        if entry is None or entry.data is None:
            raise _ApiError("file_not_found")
        return entry

    # -- Web API methods (lock held; return the success payload or raise _ApiError) ------------

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.socket_url is None:
            raise _ApiError("socket_mode_not_enabled")
        return {"url": self.socket_url}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        grant = self._caller
        if grant is not None:
            org = grant.enterprise_id
            place = self._workspaces.get(grant.team_id or "") if grant.team_id else None
            name = (
                place.name
                if place
                else next(
                    (w.enterprise_name or "" for w in self._workspaces.values() if w.enterprise_id == org), ""
                )
            )
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "org"
            return {
                "url": f"https://{slug}.slack.com/",
                "team": name,
                "user": self._users[self.bot_user_id].name,
                "team_id": grant.team_id or org,
                "enterprise_id": org,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": grant.is_enterprise_install,
            }
        slug = re.sub(r"[^a-z0-9]+", "-", self.team_name.lower()).strip("-")
        return {
            "url": f"https://{slug}.slack.com/",
            "team": self.team_name,
            "user": self._users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable_channel(params.get("channel"))
        self._check_message_content(params, require=True)
        thread_ts = params.get("thread_ts") or None
        message = Message(
            channel=channel,
            ts=self._new_ts(),
            text=str(params.get("text") or ""),
            blocks=copy.deepcopy(params.get("blocks") or []),
            thread_ts=str(thread_ts) if thread_ts else None,
            metadata=copy.deepcopy(params.get("metadata")),
            user=self.bot_user_id,
        )
        self._add_message(message)
        return {"channel": channel, "ts": message.ts, "message": self._message_json(message)}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable_channel(params.get("channel"))
        user = self._user(params.get("user"))
        owner = self._dm_owner.get(channel)
        if user.deleted or (owner is not None and owner != user.id):
            raise _ApiError("user_not_in_channel")
        self._check_message_content(params, require=True)
        ts = self._new_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user.id,
                "text": str(params.get("text") or ""),
                "blocks": copy.deepcopy(params.get("blocks") or []),
                "thread_ts": params.get("thread_ts") or None,
                "ts": ts,
            }
        )
        return {"message_ts": ts}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        ref, ts = params.get("channel"), params.get("ts")
        channel = self._resolve(ref) if isinstance(ref, str) else None
        if channel is None:
            raise _ApiError("channel_not_found")
        message = self._by_key.get((channel, str(ts)))
        if message is None:
            raise _ApiError("message_not_found")
        self._check_message_content(params, require=False)
        # Slack keeps whatever the update leaves out (an empty blocks list clears them).
        if "text" in params:
            message.text = str(params["text"] or "")
        if "blocks" in params:
            message.blocks = copy.deepcopy(params["blocks"] or [])
        if "metadata" in params:
            message.metadata = copy.deepcopy(params["metadata"])
        message.edits += 1
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_json(message),
        }

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            channel = self._resolve(str(params["channel"]))
            if channel is None:
                raise _ApiError("channel_not_found")
            return {"channel": {"id": channel}}
        ids = [u.strip() for u in str(params.get("users") or "").split(",") if u.strip()]
        if not ids:
            raise _ApiError("users_list_not_supplied")
        users = [self._user(u) for u in ids]
        if any(u.deleted for u in users):
            raise _ApiError("user_disabled")
        if len(users) > 1:
            return {"channel": {"id": self._group_dm(sorted(u.id for u in users))}}
        if users[0].is_bot:
            raise _ApiError("cannot_dm_bot")
        already = users[0].id in self._dm_of
        dm = self._dm_id(users[0].id)
        reply: dict[str, Any] = {"channel": {"id": dm}}
        if _truthy(params.get("return_im")):
            reply["channel"].update({"is_im": True, "user": users[0].id, "is_open": True})
        if already:
            reply.update({"no_op": True, "already_open": True})
        return reply

    def _group_dm(self, user_ids: list[str]) -> str:
        name = "mpdm-" + "--".join(self._users[u].name for u in user_ids) + "-1"
        existing = next((cid for cid, c in self._channels.items() if c.name == name), None)
        if existing is not None:
            return existing
        channel_id = f"G{self._next():010d}"
        # The bot opened the group DM, so it is in it.
        self._channels[channel_id] = _Channel(
            channel_id, name, private=True, members={self.bot_user_id, *user_ids}
        )
        return channel_id

    def _channel_json(self, channel: _Channel) -> dict[str, Any]:
        return {
            "id": channel.id,
            "name": channel.name,
            "name_normalized": channel.name,
            "is_channel": not channel.private,
            "is_group": channel.private,
            "is_im": False,
            "is_mpim": channel.name.startswith("mpdm-"),
            "is_private": channel.private,
            "is_archived": channel.archived,
            "is_member": self.bot_user_id in channel.members,
            "num_members": len(channel.members),
        }

    def _conversations_join(self, params: dict[str, Any]) -> dict[str, Any]:
        ref = params.get("channel")
        channel = self._channels.get(str(ref or ""))
        if channel is None:
            if isinstance(ref, str) and ref in self._dm_owner:
                raise _ApiError("method_not_supported_for_channel_type")
            raise _ApiError("channel_not_found")
        if channel.private:
            # A bot never lets itself into a private channel: someone must /invite it.
            raise _ApiError("method_not_supported_for_channel_type")
        if channel.archived:
            raise _ApiError("is_archived")
        reply: dict[str, Any] = {}
        if self.bot_user_id in channel.members:
            warning = "already_in_channel"
            reply = {"warning": warning, "response_metadata": {"warnings": [warning]}}
        channel.members.add(self.bot_user_id)
        return {"channel": self._channel_json(channel), **reply}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channels.get(str(params.get("channel") or ""))
        # A private channel the bot is not in is invisible to it.
        if channel is None or (channel.private and self.bot_user_id not in channel.members):
            raise _ApiError("channel_not_found")
        return {"channel": self._channel_json(channel)}

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve(str(params.get("channel") or ""))
        if channel is None:
            raise _ApiError("channel_not_found")
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        inclusive = _truthy(params.get("inclusive"))
        found = [
            m
            for m in reversed(self._messages)
            if m.channel == channel
            and (m.thread_ts is None or m.thread_ts == m.ts)
            and (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        return self._page(
            found, params, "messages", lambda m: self._history_json(m, params), default_limit=100
        )

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve(str(params.get("channel") or ""))
        if channel is None:
            raise _ApiError("channel_not_found")
        parent = self._by_key.get((channel, str(params.get("ts"))))
        if parent is None:
            raise _ApiError("thread_not_found")
        found = [parent] + [m for m in self._messages if m.channel == channel and m.thread_ts == parent.ts]
        return self._page(
            found, params, "messages", lambda m: self._history_json(m, params), default_limit=1000
        )

    def _history_json(self, m: Message, params: dict[str, Any]) -> dict[str, Any]:
        data = self._message_json(m)
        # Like Slack, metadata only comes back when asked for.
        if not _truthy(params.get("include_all_metadata")):
            data.pop("metadata", None)
        return data

    def _page(
        self,
        items: list[Any],
        params: dict[str, Any],
        key: str,
        render: Callable[[Any], dict[str, Any]],
        *,
        default_limit: int,
    ) -> dict[str, Any]:
        start = 0
        cursor = params.get("cursor")
        if cursor:
            try:
                start = int(base64.b64decode(str(cursor)).decode().removeprefix("next:"))
            except ValueError as exc:
                raise _ApiError("invalid_cursor") from exc
        try:
            limit = int(params.get("limit") or 0) or default_limit
        except ValueError as exc:
            raise _ApiError("invalid_limit") from exc
        page = items[start : start + limit]
        more = start + limit < len(items)
        next_cursor = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
        return {
            key: [render(item) for item in page],
            "has_more": more,
            "response_metadata": {"next_cursor": next_cursor},
        }

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"user": self._user_json(self._user(params.get("user")))}

    def _users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").lower()
        user = next((u for u in self._users.values() if u.email and u.email.lower() == email), None)
        if user is None:
            raise _ApiError("users_not_found")
        return {"user": self._user_json(user)}

    def _users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        reply = self._page(
            list(self._users.values()), params, "members", self._user_json, default_limit=10**6
        )
        reply.pop("has_more")
        return reply

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        self._take_trigger(params.get("trigger_id") or params.get("interactivity_pointer"))
        return {"view": self._new_view(self._checked_view(params.get("view"), ("modal",)))}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        self._take_trigger(params.get("trigger_id") or params.get("interactivity_pointer"))
        return {"view": self._new_view(self._checked_view(params.get("view"), ("modal",)))}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("view_id"):
            current = self._views.get(str(params["view_id"]))
        elif params.get("external_id"):
            current = self._views.get(self._external.get(str(params["external_id"]), ""))
        else:
            raise _ApiError("invalid_arguments")
        if current is None:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        view = self._checked_view(params.get("view"), (current["type"],))
        external_id = view.get("external_id") or current.get("external_id")
        updated = self._store_view(
            {**view, "external_id": external_id or ""}, view_id=current["id"], root=current["root_view_id"]
        )
        return {"view": updated}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params.get("user_id"))
        view = self._checked_view(params.get("view"), ("home",))
        view_id = self._home.get(user.id)
        stale = view_id is not None and params.get("hash") not in (None, "")
        if stale and params["hash"] != self._views[str(view_id)]["hash"]:
            raise _ApiError("hash_conflict")
        stored = self._store_view(view, view_id=view_id)
        self._home[user.id] = stored["id"]
        return {"view": stored}

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = params.get("filename")
        try:
            length = int(params.get("length", ""))
        except ValueError as exc:
            raise _ApiError("invalid_arguments") from exc
        if not filename or length < 0:
            raise _ApiError("invalid_arguments")
        alt_txt = params.get("alt_txt")
        if alt_txt is not None and len(str(alt_txt)) > ALT_TEXT_LIMIT:
            raise _ApiError("alt_txt_too_large")
        file_id = f"F{self._next():010d}"
        described = str(alt_txt) if alt_txt else None
        self._files[file_id] = _File(file_id, str(filename), length, alt_txt=described)
        return {"upload_url": f"{self.root_url}/upload/{file_id}", "file_id": file_id}

    def _functions_complete_success(self, params: dict[str, Any]) -> dict[str, Any]:
        execution = self._execution(params)
        outputs = params.get("outputs")
        if not isinstance(outputs, dict):
            raise _ApiError("invalid_arguments")
        self._function_results[execution] = {"outputs": copy.deepcopy(outputs)}
        return {}

    def _functions_complete_error(self, params: dict[str, Any]) -> dict[str, Any]:
        execution = self._execution(params)
        error = params.get("error")
        if not isinstance(error, str) or not error:
            raise _ApiError("invalid_arguments")
        self._function_results[execution] = {"error": error}
        return {}

    def _execution(self, params: dict[str, Any]) -> str:
        execution = str(params.get("function_execution_id") or "")
        if execution not in self._executions:
            raise _ApiError("function_execution_not_found")
        if execution in self._function_results:
            raise _ApiError("function_execution_already_completed")
        return execution

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("files")
        if not isinstance(wanted, list) or not wanted:
            raise _ApiError("invalid_arguments")
        entries = [self._file(w.get("id") if isinstance(w, dict) else None) for w in wanted]
        refs = params.get("channel_id") or params.get("channels") or ""
        channels = [self._postable_channel(c.strip(), share=True) for c in str(refs).split(",") if c.strip()]
        thread_ts = params.get("thread_ts") or None
        comment = params.get("initial_comment") or None
        for item, entry in zip(wanted, entries, strict=True):
            entry.title = item.get("title") or entry.title or entry.filename
            entry.channels, entry.thread_ts, entry.initial_comment = channels, thread_ts, comment
            entry.completed = True
        for channel in channels:
            self._add_message(
                Message(
                    channel=channel,
                    ts=self._new_ts(),
                    text=str(comment or ""),
                    blocks=[],
                    thread_ts=thread_ts,
                    metadata=None,
                    user=self.bot_user_id,
                    subtype="file_share",
                    files=[e.id for e in entries],
                )
            )
        return {
            "files": [
                {"id": e.id, "title": e.title, "name": e.filename, "size": len(e.data or b"")}
                for e in entries
            ]
        }


_METHODS: dict[str, Callable[[LocalSlack, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": LocalSlack._auth_test,
    "functions.completeSuccess": LocalSlack._functions_complete_success,
    "functions.completeError": LocalSlack._functions_complete_error,
    "apps.connections.open": LocalSlack._apps_connections_open,
    "chat.postMessage": LocalSlack._chat_post_message,
    "chat.postEphemeral": LocalSlack._chat_post_ephemeral,
    "chat.update": LocalSlack._chat_update,
    "conversations.open": LocalSlack._conversations_open,
    "conversations.join": LocalSlack._conversations_join,
    "conversations.info": LocalSlack._conversations_info,
    "conversations.history": LocalSlack._conversations_history,
    "conversations.replies": LocalSlack._conversations_replies,
    "users.info": LocalSlack._users_info,
    "users.lookupByEmail": LocalSlack._users_lookup_by_email,
    "users.list": LocalSlack._users_list,
    "views.open": LocalSlack._views_open,
    "views.push": LocalSlack._views_push,
    "views.update": LocalSlack._views_update,
    "views.publish": LocalSlack._views_publish,
    "files.getUploadURLExternal": LocalSlack._files_get_upload_url,
    "files.completeUploadExternal": LocalSlack._files_complete_upload,
}
