"""manifest.yml (one workspace) and manifest.oauth.yml (REAP_INSTALL=oauth) are valid by Slack's
published schema, differ only in the OAuth settings, and declare exactly what the app built for
each registers."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.listener.async_listener import AsyncListener
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

import commands
from bot.app import create_app
from bot.settings import BOT_SCOPES, Settings

ROOT = Path(__file__).resolve().parents[1]
# The manifest to paste for each REAP_INSTALL.
MANIFESTS = {"single": "manifest.yml", "oauth": "manifest.oauth.yml"}
# The host both manifests tell the operator to replace.
HOST = "https://reap.example.gov"
# What an OAuth install needs beyond manifest.yml (manifest.oauth.yml's header names the same).
OAUTH_REDIRECT = f"{HOST}/slack/oauth_redirect"
UNINSTALL_EVENTS = ["app_uninstalled", "tokens_revoked"]
TEAM = {"team_id": "T1", "team": {"id": "T1"}, "user": {"id": "U1"}, "user_id": "U1"}


def load(install: str) -> dict[str, Any]:
    """The parsed manifest for a REAP_INSTALL mode."""
    return yaml.safe_load((ROOT / MANIFESTS[install]).read_text())


@pytest.fixture(params=sorted(MANIFESTS))
def install(request: pytest.FixtureRequest) -> str:
    """Each install mode in turn: every test below holds for both manifests."""
    return str(request.param)


@pytest.fixture
def manifest(install: str) -> dict[str, Any]:
    """The parsed manifest of the install mode under test."""
    return load(install)


@pytest.fixture
async def registered(install: str, tmp_path: Path) -> AsyncIterator[AsyncApp]:
    """The Bolt app `reap serve` builds for that install mode (nothing is opened or called)."""
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'reap.db'}",
        "install": install,
        "slack_bot_token": "xoxb-x" if install == "single" else None,
        "slack_signing_secret": "x",
        "slack_client_id": "1.2",
        "slack_client_secret": "y",
        "ticker": False,
    }
    app = create_app(Settings(**values))
    try:
        yield app.bolt
    finally:
        await app.close()


def test_manifest_validates_against_slacks_schema(manifest: dict[str, Any], shared_dir: Path):
    schema_file = shared_dir / "slack" / "manifest.schema.1.0.0.json"
    if not schema_file.exists():
        pytest.skip("Slack's manifest schema is not in ../shared/slack")
    jsonschema.validate(manifest, json.loads(schema_file.read_text()))


def _differences(got: Any, want: Any, path: str = "") -> list[str]:
    if isinstance(got, dict) and isinstance(want, dict):
        return [
            difference
            for key in sorted(got.keys() | want.keys())
            for difference in _differences(got.get(key), want.get(key), f"{path}.{key}".lstrip("."))
        ]
    return [] if got == want else [path]


def test_the_oauth_manifest_is_manifest_yml_with_only_the_oauth_settings():
    # Pasted by hand into Slack, each manifest must stand whole; this keeps the copy honest.
    single = load("single")
    expected = copy.deepcopy(single)
    expected["oauth_config"]["redirect_urls"] = [OAUTH_REDIRECT]
    expected["settings"]["token_rotation_enabled"] = True
    expected["settings"]["event_subscriptions"]["bot_events"] += UNINSTALL_EVENTS

    assert _differences(load("oauth"), expected) == []
    assert "redirect_urls" not in single["oauth_config"]
    assert single["settings"]["token_rotation_enabled"] is False


def test_every_request_goes_to_slack_events_on_the_host_to_replace(manifest: dict[str, Any]):
    settings = manifest["settings"]
    urls = [
        *(c["url"] for c in manifest["features"]["slash_commands"]),
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert settings["interactivity"]["is_enabled"] is True  # buttons and forms arrive through it
    assert settings["socket_mode_enabled"] is False
    assert urls and set(urls) == {f"{HOST}/slack/events"}


@pytest.mark.parametrize("install", ["oauth"])
async def test_the_oauth_manifest_sends_installers_back_where_bolt_finishes_the_install(
    registered: AsyncApp,
):
    flow = registered.oauth_flow
    assert flow is not None
    (redirect,) = load("oauth")["oauth_config"]["redirect_urls"]
    assert urlsplit(redirect).path == flow.settings.redirect_uri_path
    assert load("oauth")["settings"]["org_deploy_enabled"] is True


async def _hears(listener: AsyncListener, body: dict[str, Any]) -> bool:
    request = AsyncBoltRequest(body="", headers={})
    request.body = body
    request.context = build_async_context(AsyncBoltContext({}), body)
    return await listener.async_matches(req=request, resp=BoltResponse(status=200))


async def _routes(app: AsyncApp, body: dict[str, Any]) -> bool:
    return any([await _hears(listener, body) for listener in app._async_listeners])


def _step(callback_id: str) -> dict[str, Any]:
    event = {
        "type": "function_executed",
        "function": {"callback_id": callback_id},
        "function_execution_id": "Fx1",
    }
    return {**TEAM, "type": "event_callback", "event": event}


def _declared_requests(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """A request of each kind the manifest has Slack send: commands, shortcuts, steps, events."""
    features = manifest["features"]
    kinds = {"message": "message_action", "global": "shortcut"}
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"]) - {"function_executed"}
    return [
        *({**TEAM, "command": c["command"], "text": "help"} for c in features["slash_commands"]),
        *({**TEAM, "type": kinds[s["type"]], "callback_id": s["callback_id"]} for s in features["shortcuts"]),
        *(_step(callback_id) for callback_id in manifest.get("functions") or {}),
        *({**TEAM, "type": "event_callback", "event": {"type": e, "user": "U1"}} for e in sorted(events)),
    ]


def _interactions() -> list[dict[str, Any]]:
    """A press of each button and a submission of each form (the manifest's interactivity)."""
    return [
        *(
            {
                **TEAM,
                "type": "block_actions",
                "actions": [{"action_id": a, "block_id": "b", "type": "button"}],
            }
            for a in commands.ACTIONS
        ),
        *(
            {**TEAM, "type": "view_submission", "view": {"type": "modal", "callback_id": v}}
            for v in commands.VIEWS
        ),
    ]


async def test_every_registered_listener_is_in_the_manifest_and_vice_versa(
    install: str, manifest: dict[str, Any], registered: AsyncApp
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
    # Bolt hears a workflow step through the function_executed event; only an OAuth app is uninstalled.
    assert declared_events == (
        set(commands.EVENTS)
        | ({"function_executed"} if declared_functions else set())
        | (set(UNINSTALL_EVENTS) if install == "oauth" else set())
    )
    sent = _declared_requests(manifest) + _interactions()
    for body in sent:
        assert await _routes(registered, body), body
    # And nothing is registered that the manifest never has Slack send.
    for listener in registered._async_listeners:
        heard = [await _hears(listener, body) for body in sent]
        assert any(heard), f"{listener.ack_function} is registered but the manifest never has Slack call it"
    assert not await _routes(registered, {**TEAM, "command": "/not-ours", "text": ""})
    assert not await _routes(registered, _step("x"))


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
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert set(scopes) == set(used)
    # An OAuth install asks Slack for BOT_SCOPES; the app's settings must grant exactly those.
    assert sorted(scopes) == sorted(BOT_SCOPES)
    sources = "\n".join(
        p.read_text() for pkg in ("bot", "commands", "reminders") for p in (ROOT / pkg).rglob("*.py")
    )
    for scope, call in used.items():
        if scope != "chat:write.public":
            assert call in sources, f"{scope} is declared but nothing calls {call}"


def test_commands_are_escaped_so_mentions_arrive_as_ids(manifest: dict[str, Any]):
    assert all(c["should_escape"] for c in manifest["features"]["slash_commands"])
