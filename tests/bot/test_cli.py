"""The `reap` command line, run as an operator would: one clear line on failure, never a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from localslack.server import LocalSlack
from storage.migrate import head_revisions
from tests.harness import cli_env

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "oit-reap.yaml"


def reap(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `reap` in a subprocess with exactly the given REAP/Slack environment."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=cli_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_upgrade_creates_an_empty_sqlite_database(tmp_path: Path):
    result = reap(
        "db", "upgrade", env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/reap.db"}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "database at revision" in result.stdout
    assert (tmp_path / "reap.db").exists()


def test_a_malformed_setting_is_one_line_naming_it(tmp_path: Path):
    result = reap("db", "upgrade", env={"REAP_TIMEZONE": "Nowhere/Land"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "reap: setting REAP_TIMEZONE: 'Nowhere/Land' is not an IANA time zone such as America/New_York"
    ]
    assert not (tmp_path / "reap.db").exists()


def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path):
    url = "postgresql+asyncpg://reap:hunter2@127.0.0.1:9/reap"
    result = reap("db", "upgrade", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("reap: database:")
    assert "hunter2" not in result.stderr


def test_import_before_upgrade_says_what_to_run(tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("version: 1\n")
    result = reap("export", env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/reap.db"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "run `reap db upgrade` first" in result.stderr


@pytest.mark.parametrize("args", [["import", "missing.yaml"]])
def test_an_unreadable_plan_file_is_one_line(tmp_path: Path, args: list[str]):
    reap("db", "upgrade", env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/reap.db"}, cwd=tmp_path)
    result = reap(*args, env={"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/reap.db"}, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == "reap: missing.yaml: cannot read it (No such file or directory)"


@pytest.fixture
def slack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for a CLI that learns its workspace from localslack's auth.test."""
    with LocalSlack(team_id="T0CITY") as slack:
        env = {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/reap.db",
            "SLACK_BOT_TOKEN": "xoxb-cli",
            "SLACK_API_URL": slack.base_url,
        }
        assert reap("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        yield env


def counts(tmp_path: Path) -> dict[str, int]:
    with sqlite3.connect(tmp_path / "reap.db") as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        return {t: db.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}


def test_importing_the_demo_plan_twice_leaves_identical_row_counts(tmp_path: Path, slack_env: dict[str, str]):
    first = reap("import", str(DEMO), env=slack_env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    after_first = counts(tmp_path)
    assert after_first["action_item"] == 17
    second = reap("import", str(DEMO), env=slack_env, cwd=tmp_path)
    assert second.returncode == 0
    assert "nothing to change in workspace T0CITY" in second.stdout
    assert counts(tmp_path) == after_first


def test_dry_run_prints_changes_and_writes_nothing(tmp_path: Path, slack_env: dict[str, str]):
    before = counts(tmp_path)
    result = reap("import", str(DEMO), "--dry-run", env=slack_env, cwd=tmp_path)
    assert result.returncode == 0
    assert "would create item OIT-1" in result.stdout
    assert {k: v for k, v in counts(tmp_path).items() if k != "installation"} == {
        k: v for k, v in before.items() if k != "installation"
    }


def test_yaml_export_then_import_is_a_no_op(tmp_path: Path, slack_env: dict[str, str]):
    reap("import", str(DEMO), env=slack_env, cwd=tmp_path)
    exported = tmp_path / "export.yaml"
    assert (
        reap("export", "--format", "yaml", "-o", str(exported), env=slack_env, cwd=tmp_path).returncode == 0
    )
    again = reap("import", str(exported), env=slack_env, cwd=tmp_path)
    assert "nothing to change" in again.stdout


def test_a_malformed_plan_is_one_line_with_the_path_and_changes_nothing(
    tmp_path: Path, slack_env: dict[str, str]
):
    reap("import", str(DEMO), env=slack_env, cwd=tmp_path)
    before = counts(tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(DEMO.read_text().replace("due: 2026-12-18", "due: 2026-13-45", 1))
    result = reap("import", str(broken), env=slack_env, cwd=tmp_path)
    assert result.returncode == 2, "a file the operator gave is bad input"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"reap: {broken}: plans[0].strategies[")
    assert ".due:" in lines[0]
    assert counts(tmp_path) == before


def test_report_prints_the_quarter_as_markdown_html_and_json(tmp_path: Path, slack_env: dict[str, str]):
    reap("import", str(DEMO), env=slack_env, cwd=tmp_path)
    markdown = reap("report", "FY2027-Q2", "--format", "md", env=slack_env, cwd=tmp_path)
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("# REAP rollup FY2027-Q2")
    assert "Hire an equity data analyst" in markdown.stdout
    html = reap("report", "FY2027-Q2", "--format", "html", "--department", "OIT", env=slack_env, cwd=tmp_path)
    assert "<html" in html.stdout.lower()
    data = json.loads(reap("report", "FY2027-Q2", "--format", "json", env=slack_env, cwd=tmp_path).stdout)
    assert data["quarter"] == "FY2027-Q2"
    assert reap("report", "someday", env=slack_env, cwd=tmp_path).returncode == 2


def test_agenda_writes_the_meeting_packet_and_refuses_a_quarter_without_a_meeting(
    tmp_path: Path, slack_env: dict[str, str]
):
    reap("import", str(DEMO), env=slack_env, cwd=tmp_path)
    out = tmp_path / "agenda.html"
    written = reap("agenda", "FY2027-Q3", "--format", "html", "-o", str(out), env=slack_env, cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert "<h1>DEI meeting agenda: FY2027-Q3</h1>" in out.read_text(encoding="utf-8")
    markdown = reap("agenda", "FY2027-Q3", env=slack_env, cwd=tmp_path)
    assert markdown.stdout.startswith("# DEI meeting agenda: FY2027-Q3\n\nMeeting on 2027-04-22")
    missing = reap("agenda", "FY2028-Q1", env=slack_env, cwd=tmp_path)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.strip().endswith("set it with /reap checkin schedule FY2028-Q1 <date>.")


def test_reap_socket_for_an_app_without_socket_mode_exits_1_with_slacks_reason(
    tmp_path: Path, slack_env: dict[str, str]
):
    env = {
        **slack_env,
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_APP_TOKEN": "xapp-1-cli",
        "REAP_TICKER": "false",
    }
    result = reap("socket", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "reap: Socket Mode: Slack refused apps.connections.open (socket_mode_not_enabled)"
    )
    assert "Traceback" not in result.stderr


def test_db_current_and_check_say_whether_migrations_are_pending(tmp_path: Path):
    env = {"DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/reap.db"}
    current = reap("db", "current", env=env, cwd=tmp_path)
    assert (current.returncode, current.stdout) == (0, "none\n")
    pending = reap("db", "check", env=env, cwd=tmp_path)
    assert pending.returncode == 1
    assert pending.stderr.splitlines() == [
        "reap: migrations are pending: no migration applied; run `reap db upgrade`"
    ]

    reap("db", "upgrade", env=env, cwd=tmp_path)
    current = reap("db", "current", env=env, cwd=tmp_path)
    assert (current.returncode, current.stdout.strip()) == (0, *head_revisions())
    checked = reap("db", "check", env=env, cwd=tmp_path)
    assert (checked.returncode, checked.stdout, checked.stderr) == (
        0,
        "the database is at the newest migration\n",
        "",
    )


def test_version_is_the_installed_packages(tmp_path: Path):
    result = reap("--version", env={}, cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, f"reap {version('reap-tracker')}\n")


# --- every error is one line: exit 2 for bad input, 1 for a failure, never a traceback -------------


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed run (and that there is no traceback)."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("content", "byte"),
    [(b"version: 1\ntitle: caf\xe9\n", "byte 21 is 0xE9"), (b"\xff\xfeversion: 1\n", "byte 0 is 0xFF")],
    ids=["latin-1", "utf-16-bom"],
)
def test_a_plan_file_that_is_not_utf8_is_named_and_changes_nothing(
    tmp_path: Path, slack_env: dict[str, str], content: bytes, byte: str
):
    plan = tmp_path / "latin1.yaml"
    plan.write_bytes(content)
    before = counts(tmp_path)
    result = reap("import", str(plan), env=slack_env, cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result) == f"reap: {plan}: is not UTF-8 text ({byte}); save it as UTF-8"
    assert counts(tmp_path) == before


@pytest.mark.parametrize("port", ["abc", "54x2", "5432.0"])
def test_a_database_url_whose_port_is_not_a_number_names_the_setting_not_the_password(
    tmp_path: Path, port: str
):
    url = f"postgresql+asyncpg://reap:hunter2@db.internal:{port}/reap"
    result = reap("db", "upgrade", env={"DATABASE_URL": url}, cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result) == f"reap: setting DATABASE_URL: the port '{port}' is not a number"


@pytest.mark.parametrize(
    "at", ["9999-12-30T09:00", "9999-12-31T23:59+00:00", "0001-01-01T00:00", "1900-06-30T09:00"]
)
def test_remind_at_an_instant_outside_the_working_years_is_refused(
    tmp_path: Path, slack_env: dict[str, str], at: str
):
    result = reap("remind", "--at", at, "--dry-run", env=slack_env, cwd=tmp_path)
    assert result.returncode == 2
    assert one_line_error(result) == f"reap: '{at}' is outside the years REAP Tracker works with (1901-2999)"


def test_remind_at_the_last_working_year_still_runs(tmp_path: Path, slack_env: dict[str, str]):
    result = reap("remind", "--at", "2999-12-30T09:00", "--dry-run", env=slack_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", [["export"], ["report", "FY2027-Q2"]])
def test_an_output_file_that_cannot_be_written_is_named_not_blamed_on_the_database(
    tmp_path: Path, slack_env: dict[str, str], command: list[str]
):
    reap("import", str(DEMO), env=slack_env, cwd=tmp_path)
    result = reap(*command, "-o", "missing/dir/out.yaml", env=slack_env, cwd=tmp_path)
    assert result.returncode == 1
    assert one_line_error(result) == "reap: missing/dir/out.yaml: cannot write it (No such file or directory)"
