"""`reap serve` logs every line, uvicorn's included, in the operator's format with secrets masked."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from localslack.server import LocalSlack
from tests.harness import SECRET, TEAM, TOKEN, cli_env, free_port


def serve_output(tmp_path: Path, slack: LocalSlack, log_format: str, paths: list[str]) -> list[str]:
    """Start `reap serve` at INFO, GET each path once healthy, stop it; every line it printed."""
    env = cli_env(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/reap.db",
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_API_URL=slack.base_url,
        REAP_LOG_LEVEL="INFO",
        REAP_LOG_FORMAT=log_format,
        REAP_TICKER="false",
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
        for path in paths:
            httpx.get(f"{url}{path}", timeout=5)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    return [line for line in output.decode().splitlines() if line.strip()]


@pytest.fixture
def slack() -> Iterator[LocalSlack]:
    """localslack for the bot's auth.test at start-up."""
    with LocalSlack(team_id=TEAM) as fake:
        yield fake


# A request line carrying secrets, as a misconfigured probe or a pasted URL might.
LEAKY_PATH = f"/healthz?token={TOKEN}&other=xoxp-1234-5678-abcdef&secret={SECRET}"


def test_with_json_format_every_line_reap_serve_prints_is_json_and_secrets_are_masked(
    tmp_path: Path, slack: LocalSlack
):
    lines = serve_output(tmp_path, slack, "json", [LEAKY_PATH])
    records = [json.loads(line) for line in lines]  # any line that is not JSON fails here
    loggers = {r["logger"] for r in records}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, loggers
    messages = [r["message"] for r in records]
    assert any(m.startswith("Uvicorn running on http://127.0.0.1:") for m in messages)
    access = [m for m in messages if "/healthz?token=" in m]
    assert access and all("token=[redacted]" in m and "other=[redacted]" in m for m in access)
    output = "\n".join(lines)
    assert TOKEN not in output and SECRET not in output and "xoxp-1234" not in output


def test_with_text_format_uvicorns_lines_share_our_layout_and_masking(tmp_path: Path, slack: LocalSlack):
    lines = serve_output(tmp_path, slack, "text", [LEAKY_PATH])
    uvicorn = [line for line in lines if " uvicorn." in line]
    assert any(" INFO uvicorn.access " in line for line in uvicorn), lines
    assert any(" INFO uvicorn.error Uvicorn running on " in line for line in uvicorn), lines
    output = "\n".join(lines)
    assert TOKEN not in output and SECRET not in output and "xoxp-1234" not in output
