"""The dashboard from the operator's side: `reap publish`, /dashboard/ served read-only when
REAP_DASHBOARD=public (and not at all otherwise), and the tick republishing a closed quarter."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from storage.engine import create_engine, session_factory
from tests.harness import cli_env, running_bot
from tests.publishing.support import demo_record, publish_demo

ROOT = Path(__file__).resolve().parents[2]


async def test_the_published_site_is_served_read_only_at_dashboard(database_url: str, tmp_path: Path):
    folder = tmp_path / "dashboard"
    async with running_bot(database_url, dashboard="public", dashboard_dir=folder) as bot:
        missing = await bot.http.get(f"{bot.url}/dashboard/")
        assert (missing.status_code, missing.text) == (404, "The dashboard has not been published here.")
        await demo_record(bot.sessions)
        await publish_demo(bot.sessions, folder)
        index = await bot.http.get(f"{bot.url}/dashboard/")
        assert index.status_code == 200 and "Racial Equity Action Plans" in index.text
        page = await bot.http.get(f"{bot.url}/dashboard/es/departments/OIT.html")
        assert page.status_code == 200 and '<html lang="es">' in page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src" not in page.headers["content-security-policy"]
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert page.headers["x-content-type-options"] == "nosniff"
        data = await bot.http.get(f"{bot.url}/dashboard/data/latest/items.csv")
        assert data.status_code == 200 and data.content.startswith(b"\xef\xbb\xbfquarter,department")
        assert (await bot.http.post(f"{bot.url}/dashboard/en/index.html")).status_code == 405
        assert (await bot.http.get(f"{bot.url}/dashboard/.reap-dashboard.json")).status_code == 404
        assert (await bot.http.get(f"{bot.url}/dashboard/../pyproject.toml")).status_code == 404


async def test_without_reap_dashboard_public_nothing_is_served(database_url: str, tmp_path: Path):
    folder = tmp_path / "dashboard"
    async with running_bot(database_url, dashboard_dir=folder) as bot:
        await demo_record(bot.sessions)
        await publish_demo(bot.sessions, folder)
        assert (await bot.http.get(f"{bot.url}/dashboard/")).status_code == 404
        assert (await bot.http.get(f"{bot.url}/dashboard/en/index.html")).status_code == 404


async def test_the_tick_republishes_when_a_quarter_closes_and_not_again_until_the_record_moves(
    database_url: str, tmp_path: Path
):
    folder = tmp_path / "dashboard"
    async with running_bot(database_url, dashboard="public", dashboard_dir=folder) as bot:
        assert bot.app.ticker is not None
        await demo_record(bot.sessions)  # closes FY2027-Q2
        await bot.app.ticker(datetime(2027, 1, 16, 14, tzinfo=UTC))
        index = folder / "en" / "index.html"
        assert "FY2027-Q2" in index.read_text(encoding="utf-8")
        written = index.stat().st_mtime_ns
        await bot.app.ticker(datetime(2027, 1, 16, 14, 1, tzinfo=UTC))
        assert index.stat().st_mtime_ns == written  # nothing moved: not rewritten


def reap(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `reap` in a subprocess with exactly the given environment."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=cli_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_reap_publish_writes_the_site_and_refuses_a_folder_of_other_files(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path}/reap.db"
    env = {"DATABASE_URL": url, "REAP_TIMEZONE": "America/New_York"}
    assert reap("db", "upgrade", env=env, cwd=tmp_path).returncode == 0

    async def close_q2() -> None:
        engine = create_engine(url)
        sessions = session_factory(engine)
        try:
            await demo_record(sessions)
        finally:
            await engine.dispose()

    asyncio.run(close_q2())
    done = reap("publish", "--out", "site", "--quarter", "FY2027-Q2", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("published FY2027-Q2 to site: 49 files")
    assert (tmp_path / "site" / "es" / "index.html").exists()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "keep.txt").write_text("mine", encoding="utf-8")
    refused = reap("publish", "--out", "docs", env=env, cwd=tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr
    open_quarter = reap("publish", "--out", "site", "--quarter", "FY2027-Q3", env=env, cwd=tmp_path)
    assert open_quarter.returncode == 2
    assert "FY2027-Q3 is not closed" in open_quarter.stderr
