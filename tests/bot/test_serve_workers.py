"""`reap serve --workers N`: N processes answering on one port, each with its own ticker, which the
outbox keeps safe on PostgreSQL; SQLite, one process on local disk, is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from localslack.server import LocalSlack
from storage.engine import is_sqlite
from tests.harness import SECRET, TEAM, TOKEN, cli_env, free_port, signed_command


def serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve", *args], env=env, capture_output=True, text=True, timeout=60
    )


def env_for(database_url: str, slack_url: str = "http://127.0.0.1:9/api/") -> dict[str, str]:
    return cli_env(
        DATABASE_URL=database_url,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_API_URL=slack_url,
        REAP_LOG_LEVEL="WARNING",
    )


def test_several_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path):
    done = serve("--workers", "2", env=env_for(f"sqlite+aiosqlite:///{tmp_path}/reap.db"))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "reap: --workers needs PostgreSQL: SQLite serves one process on local disk (see docs/operations.md)"
    )


def test_a_test_clock_runs_one_process(tmp_path: Path):
    done = serve(
        "--workers",
        "2",
        "--clock-start",
        "2027-03-30T09:00",
        env=env_for(f"sqlite+aiosqlite:///{tmp_path}/r.db"),
    )
    assert done.returncode == 2
    assert "--clock-start runs one process; leave out --workers" in done.stderr


@pytest.mark.parametrize("workers", ["0", "-1", "two", "65"])
def test_a_number_of_workers_that_is_not_one_to_64_is_refused(tmp_path: Path, workers: str):
    done = serve("--workers", workers, env=env_for(f"sqlite+aiosqlite:///{tmp_path}/r.db"))
    assert done.returncode == 2
    assert "is not a number of processes from 1 to 64" in done.stderr


def children(pid: int) -> set[int]:
    """The live child processes of `pid`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.fixture
def two_workers(database_url: str) -> Iterator[tuple[str, subprocess.Popen[bytes], LocalSlack]]:
    """`reap db upgrade` then `reap serve --workers 2` on PostgreSQL; yields its URL, process and Slack."""
    if is_sqlite(database_url):
        pytest.skip("several workers need PostgreSQL")
    with LocalSlack(team_id=TEAM) as slack:
        slack.add_user("U0OWNER", "owner", tz="America/Chicago")
        env = env_for(database_url, slack.base_url)
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, check=True, capture_output=True
        )
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(children(process.pid)) < 2:
                time.sleep(0.1)
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            else:
                pytest.fail("reap serve --workers 2 did not become ready")
            yield url, process, slack
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)


def test_two_workers_answer_on_one_port_and_stop_together(
    two_workers: tuple[str, subprocess.Popen[bytes], LocalSlack],
):
    url, process, slack = two_workers
    workers = children(process.pid)
    # uvicorn's supervisor keeps one process per worker (multiprocessing may add a tracker).
    assert len([pid for pid in workers if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]) == 2
    for _ in range(6):
        body, headers = signed_command(slack, "help status")
        answer = httpx.post(f"{url}/slack/events", content=body, headers=headers, timeout=10)
        assert answer.status_code == 200 and "/reap status <ref>" in answer.json()["text"]
    assert httpx.get(f"{url}/readyz").json()["scheduler"] == "ok", "each worker ticks"

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)

    assert process.returncode in (0, -signal.SIGTERM), output.decode()
    assert "Traceback" not in output.decode()
    deadline = time.monotonic() + 10  # a worker may still be tearing down its memory as the parent exits
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in workers):
        time.sleep(0.1)
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers), "no worker outlives the supervisor"


async def test_connections_to_the_workers_socket_send_without_waiting_for_acks():
    # uvicorn's own socket for workers left the protocol 0, so asyncio never set TCP_NODELAY on the
    # connections it accepted, and each answer after a connection's first waited on a delayed ACK.
    import asyncio
    import socket

    from bot.cli import listening_socket

    sock = listening_socket("127.0.0.1", free_port())
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Report(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Report, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        assert sock.proto == socket.IPPROTO_TCP
        assert await asyncio.wait_for(accepted, 10) == 1
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_a_port_in_use_is_refused_in_one_line():
    from bot.cli import CliError, listening_socket

    taken = listening_socket("127.0.0.1", free_port())
    taken.listen()
    try:
        with pytest.raises(CliError, match=r"cannot listen on 127\.0\.0\.1"):
            listening_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
