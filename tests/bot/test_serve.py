"""`reap serve` as an operator runs it: a real process answering signed commands and health checks."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from localslack.server import LocalSlack
from tests.harness import SECRET, TEAM, TOKEN, cli_env, free_port, sign, signed_command


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    """localslack with one user."""
    with LocalSlack(team_id=TEAM) as fake:
        fake.add_user("U0OWNER", "owner", tz="America/Chicago")
        yield fake


@pytest.fixture
def served(tmp_path: Path, slack: LocalSlack) -> Iterator[str]:
    """`reap db upgrade` then `reap serve` in a subprocess; yields its base URL."""
    env = cli_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/reap.db",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_API_URL=slack.base_url,
        REAP_LOG_LEVEL="WARNING",
    )
    subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("reap serve did not become healthy")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
        # uvicorn shuts down gracefully, then re-raises the signal so supervisors see why it stopped.
        assert process.returncode in (0, -signal.SIGTERM), output.decode()
        assert "Traceback" not in output.decode()
        assert TOKEN not in output.decode() and SECRET not in output.decode()


def test_serve_reports_healthy_and_answers_a_signed_command(served: str, slack: LocalSlack):
    health = httpx.get(f"{served}/healthz").json()
    assert health["ok"] is True and health["database"] == "ok"
    body, headers = signed_command(slack, "help status")
    response = httpx.post(f"{served}/slack/events", content=body, headers=headers)
    assert response.status_code == 200
    assert "/reap status <ref>" in response.json()["text"]
    assert slack.calls_to("auth.test"), "the bot learns who it is once at start-up"


def test_serve_refuses_a_forged_command(served: str):
    body = b"team_id=T0REAP&user_id=U0OWNER&command=%2Freap&text=help"
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, secret="forged")}
    assert httpx.post(f"{served}/slack/events", content=body, headers=headers).status_code == 401
