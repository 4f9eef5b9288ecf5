"""manifest.yml is valid by Slack's published schema and declares exactly what the code registers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

import commands

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def manifest() -> dict[str, Any]:
    """The parsed manifest.yml."""
    return yaml.safe_load((ROOT / "manifest.yml").read_text())


async def _authorized() -> AuthorizeResult:
    return AuthorizeResult(enterprise_id=None, team_id="T1", bot_token="xoxb-x")


@pytest.fixture
def registered() -> AsyncApp:
    """A Bolt app with every REAP listener registered (no network: verification is off)."""
    app = AsyncApp(
        signing_secret="x",
        request_verification_enabled=False,
        authorize=lambda **_: _authorized(),
        raise_error_for_unhandled_request=False,
    )
    commands.register(app)
    return app


def test_manifest_validates_against_slacks_schema(manifest: dict[str, Any], shared_dir: Path):
    schema_file = shared_dir / "slack" / "manifest.schema.1.0.0.json"
    if not schema_file.exists():
        pytest.skip("Slack's manifest schema is not in ../shared/slack")
    jsonschema.validate(manifest, json.loads(schema_file.read_text()))


async def _routes(app: AsyncApp, body: dict[str, Any]) -> bool:
    request = AsyncBoltRequest(body="", headers={})
    request.body = body
    request.context = build_async_context(AsyncBoltContext({}), body)
    for listener in app._async_listeners:
        if await listener.async_matches(req=request, resp=BoltResponse(status=200)):
            return True
    return False


async def test_every_registered_listener_is_in_the_manifest_and_vice_versa(
    manifest: dict[str, Any], registered: AsyncApp
):
    features = manifest["features"]
    declared_commands = {c["command"] for c in features["slash_commands"]}
    declared_shortcuts = {s["callback_id"] for s in features["shortcuts"] if s["type"] == "message"}
    declared_globals = {s["callback_id"] for s in features["shortcuts"] if s["type"] == "global"}
    declared_events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    declared_functions = set(manifest.get("functions") or {})
    assert declared_commands == set(commands.COMMANDS)
    assert declared_shortcuts == set(commands.SHORTCUTS)
    assert declared_globals == set(commands.GLOBAL_SHORTCUTS)
    assert declared_functions == set(commands.FUNCTIONS)
    # Bolt hears a workflow step through the function_executed event.
    assert declared_events == set(commands.EVENTS) | ({"function_executed"} if declared_functions else set())
    team = {"team_id": "T1", "team": {"id": "T1"}, "user": {"id": "U1"}, "user_id": "U1"}
    for command in declared_commands:
        assert await _routes(registered, {**team, "command": command, "text": "help"})
    for callback_id in declared_shortcuts:
        assert await _routes(registered, {**team, "type": "message_action", "callback_id": callback_id})
    for callback_id in declared_globals:
        assert await _routes(registered, {**team, "type": "shortcut", "callback_id": callback_id})
    for callback_id in declared_functions:
        event = {
            "type": "function_executed",
            "function": {"callback_id": callback_id},
            "function_execution_id": "Fx1",
        }
        assert await _routes(registered, {**team, "type": "event_callback", "event": event})
    for event in declared_events - {"function_executed"}:
        assert await _routes(
            registered, {**team, "type": "event_callback", "event": {"type": event, "user": "U1"}}
        )
    assert not await _routes(registered, {**team, "command": "/not-ours", "text": ""})
    stranger = {"type": "function_executed", "function": {"callback_id": "x"}, "function_execution_id": "Fx2"}
    assert not await _routes(registered, {**team, "type": "event_callback", "event": stranger})


def test_every_workflow_step_runs_as_a_person_and_custom_steps_are_enabled(manifest: dict[str, Any]):
    # Slack offers an app's custom steps in Workflow Builder only when it is org-ready and remote.
    assert manifest["settings"]["org_deploy_enabled"] is True
    assert manifest["settings"]["function_runtime"] == "remote"
    for callback_id, function in manifest["functions"].items():
        user = function["input_parameters"]["user_context"]
        assert user == {**user, "type": "slack#/types/user_context", "is_required": True}, callback_id
        assert function["output_parameters"], callback_id


def test_the_bot_asks_only_for_scopes_its_code_uses(manifest: dict[str, Any]):
    used = {
        "channels:join": "conversations_join",
        "chat:write": "chat_postMessage",
        "chat:write.public": "chat_postMessage",
        "commands": "COMMAND",
        "files:write": "files_upload_v2",
        "im:history": "conversations_history",
        "im:write": "conversations_open",
        "users:read": "users_info",
    }
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(used)
    sources = "\n".join(
        p.read_text() for pkg in ("bot", "commands", "reminders") for p in (ROOT / pkg).rglob("*.py")
    )
    for scope, call in used.items():
        if scope != "chat:write.public":
            assert call in sources, f"{scope} is declared but nothing calls {call}"


def test_commands_are_escaped_so_mentions_arrive_as_ids(manifest: dict[str, Any]):
    assert all(c["should_escape"] for c in manifest["features"]["slash_commands"])
