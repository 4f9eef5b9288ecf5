"""`reap shell`: the real app driven through signed HTTP against localslack, from a script or a prompt."""

from __future__ import annotations

import builtins
import io
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import bot.console as console
from bot.app import ReapApp
from bot.console import (
    DEMO_START,
    BadInput,
    DatabaseNotReady,
    DemoUnavailable,
    PlanNeedsDemo,
    handle_for,
    link_mentions,
    parse_clock,
    parse_fields,
    run_shell,
    slack_escape,
)
from bot.settings import Settings
from localslack.server import Fault, LocalSlack
from plans.planfile import import_plan, parse_plan_file
from storage.engine import create_engine, session_factory
from storage.migrate import upgrade_async
from tests.harness import cli_env

# Monday afternoon: OIT-2 (due 2026-11-20) is overdue, so it leads the coordinator's list.
NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
PLAN = Path(__file__).resolve().parents[2] / "examples" / "oit-reap.yaml"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings as an operator might have them; --demo ignores the database URL."""
    return Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}", admins=[])


async def shell(settings: Settings, script: str, **kwargs: Any) -> tuple[int, str]:
    """Run the demo shell over `script`; its exit code and everything it printed."""
    out = io.StringIO()
    kwargs.setdefault("demo", True)
    kwargs.setdefault("now", NOW)
    kwargs.setdefault("files", folder_of(settings))
    code = await run_shell(settings, script=io.StringIO(script), out=out, **kwargs)
    return code, out.getvalue()


def folder_of(settings: Settings) -> Path:
    """The test's own folder for the shell's uploads and log: next to its database."""
    return Path(settings.database_url.removeprefix("sqlite+aiosqlite:///")).parent / "shell"


def is_png(path: Path) -> bool:
    """Whether the file holds a PNG image."""
    return path.read_bytes().startswith(b"\x89PNG")


def section(output: str, line: str) -> str:
    """What the shell printed for the first script line starting with `line` (up to the next one)."""
    echo = re.search(rf"^> {re.escape(line)}.*\n", output, re.MULTILINE)
    assert echo is not None, f"no script line starts with {line!r}"
    following = output.find("\n> ", echo.end())
    return output[echo.end() : following if following >= 0 else None]


# --- scripts ----------------------------------------------------------------------------------


async def test_help_and_list_show_the_bots_ephemeral_replies(settings: Settings):
    code, output = await shell(settings, "/reap help\n/reap list mine\n")
    assert code == 0
    assert output.startswith("REAP shell: demo workspace T0REAP, 8 people")
    assert "you are @equitypm (Equity Program Manager)" in output.splitlines()[0]
    help_part = section(output, "/reap help")
    assert "── reply, only @equitypm sees it" in help_part
    assert "/reap status <ref>" in help_part
    listing = section(output, "/reap list mine")
    assert "*Your open items* · 2 items" in listing
    assert "@equitypm" in listing and "<@" not in listing, "mentions are shown by handle"
    assert "*due 2026-11-20 (10 days overdue)*" in listing, "date tokens show their fallback"
    assert "[1 Done] [2 Snooze…: 1 day | 1 week | Pick a date…] [3 Update]" in listing


async def test_clicking_done_asks_for_evidence_then_completes_it_awaiting_verification(settings: Settings):
    script = (
        "/reap list mine\n:click 1\n"
        ":submit evidence=https://www.phila.gov/oit/equity-scoring-matrix\n/reap show OIT-2\n"
    )
    code, output = await shell(settings, script)
    assert code == 0
    first_ref = re.search(r"\*(OIT-\d+)\*", section(output, "/reap list mine"))
    assert first_ref is not None and first_ref[1] == "OIT-2"
    clicked = section(output, ":click 1")
    assert "── modal opened for @equitypm" in clicked and "needs evidence of completion" in clicked
    shown = section(output, "/reap show OIT-2")
    assert "✅ done — awaiting verification · 100%" in shown
    assert "evidence of completion" in shown


async def test_another_user_is_refused_and_the_item_is_unchanged(settings: Settings):
    script = ":as @pmodir\n/reap done OIT-1\n/reap show OIT-1\n"
    code, output = await shell(settings, script)
    assert code == 0
    assert "you are now @pmodir (Project Management Office Director)" in section(output, ":as @pmodir")
    refused = section(output, "/reap done OIT-1")
    assert "only @pmodir sees it" in refused
    assert "You can't change the status of OIT-1" in refused
    assert "🟢 on track · 60%" in section(output, "/reap show OIT-1")


async def test_add_opens_the_modal_and_submit_creates_the_item(settings: Settings):
    script = (
        "/reap add\n"
        ':submit title="Translate the device-lending guide" strategy="Digital equity" due=2027-03-31\n'
        "/reap show OIT-18\n"
    )
    code, output = await shell(settings, script)
    assert code == 0
    modal = section(output, "/reap add")
    assert "── modal opened for @equitypm" in modal
    assert "strategy*" in modal and "Equity projects | Workplace equity | Digital equity" in modal
    submitted = section(output, ":submit")
    assert "── DM to @equitypm" in submitted
    assert "Added *OIT-18*." in submitted
    shown = section(output, "/reap show OIT-18")
    assert "*OIT-18* Translate the device-lending guide" in shown
    assert "due 2027-03-31 · @equitypm" in shown and "_Digital equity_" in shown


async def test_update_button_and_modal_change_status_progress_note_and_due(settings: Settings):
    script = (
        "/reap show OIT-1\n"
        ":click 3\n"
        ':submit status=at-risk progress=65 note="waiting on DEI & legal" due=2027-01-15\n'
        "/reap history OIT-1\n"
    )
    code, output = await shell(settings, script)
    assert code == 0
    assert "── modal opened for @equitypm" in section(output, ":click 3")
    assert "🟡 at risk · 65% · due 2027-01-15" in section(output, ":submit")
    history = section(output, "/reap history OIT-1")
    assert "changed status: on_track → at_risk (waiting on DEI & legal)" in history


async def test_typed_text_is_escaped_like_slack_and_mentions_become_users(settings: Settings):
    script = '/reap note OIT-1 "ask <legal> & HR"\n/reap assign OIT-1 @gisanlst "GIS owns the data work"\n'
    code, output = await shell(settings, script)
    assert code == 0
    assert "> ask <legal> & HR" in section(output, "/reap note")
    assert "OIT-1 now belongs to @gisanlst." in section(output, "/reap assign OIT-1 @gisanlst")


async def test_home_publishes_the_callers_app_home(settings: Settings):
    # Home's first control is "Add an item"; 3 is the snooze menu of the first item.
    code, output = await shell(settings, ":as @pmodir\n:home\n:click 3 1 week\n")
    assert code == 0
    home = section(output, ":home")
    assert "── App Home of @pmodir" in home
    assert "REAP Tracker\n   ============" in home and "*Your open items* · 4" in home
    pressed = section(output, ":click 3 1 week")
    assert "── App Home of @pmodir" in pressed, "a control on Home republishes it"
    assert "💤 until 2026-12-07" in pressed


async def test_clock_travels_and_the_real_reminders_arrive_once(settings: Settings):
    code, output = await shell(settings, ":clock 2027-03-30 09:00\n:clock\n:clock 2027-03-30 09:00\n")
    assert code == 0
    moved = section(output, ":clock 2027-03-30 09:00")
    assert "clock: Tuesday 2027-03-30 09:00 EDT" in moved
    assert "── DM to @" in moved, "the tick at the new time delivers the digests owed"
    assert "clock: Tuesday 2027-03-30 09:00 EDT" in section(output, ":clock")
    assert output.count("── DM to @") == moved.count("── DM to @"), (
        "the same instant again sends nothing more"
    )


async def test_clock_runs_the_ticker_at_the_new_time_and_shows_what_arrives(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    ticks: list[datetime] = []
    real_create_app = console.create_app

    def create_app_with_ticker(*args: Any, **kwargs: Any) -> ReapApp:
        app = real_create_app(*args, **kwargs)

        async def tick(now: datetime) -> None:
            ticks.append(now)
            await app.client.chat_postMessage(
                channel="U0PMODIR", text=f"Reminder: OIT-3 is due ({now:%H:%M})"
            )

        app.ticker = tick
        return app

    monkeypatch.setattr(console, "create_app", create_app_with_ticker)
    code, output = await shell(settings, ":clock 2027-03-30 09:00\n")
    assert code == 0
    assert ticks == [datetime(2027, 3, 30, 13, 0, tzinfo=UTC)]
    assert "── DM to @pmodir · message 1\n   Reminder: OIT-3 is due (13:00)" in output


async def test_a_line_that_cannot_be_carried_out_is_reported_and_the_script_goes_on(settings: Settings):
    script = ":click 4\n:submit title=x\n:as @nobody\n:frobnicate\n/reap help\n"
    code, output = await shell(settings, script)
    assert code == 1
    assert "! nothing clickable has been shown to @equitypm yet" in output
    assert "! no modal is open" in output
    assert "! no single person matches '@nobody'" in output
    assert "! ':frobnicate' is not something I can send" in output
    assert "REAP Tracker commands:" in section(output, "/reap help")


async def test_an_error_from_the_app_is_shown_and_fails_the_script(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    class FailingSlack(LocalSlack):
        """localslack whose first views.publish fails."""

        def start(self) -> LocalSlack:
            self.fail_next("views.publish", Fault(error="internal_error"))
            return super().start()

    monkeypatch.setattr(console, "LocalSlack", FailingSlack)
    code, output = await shell(settings, ":as @pmodir\n:home\n/reap show OIT-3\n")
    assert code == 1
    assert "── HTTP 500 from the app" in section(output, ":home")
    assert "*OIT-3* Score the active project portfolio" in section(output, "/reap show OIT-3")


async def test_quit_stops_the_script_and_blank_lines_and_comments_are_skipped(settings: Settings):
    code, output = await shell(settings, "# a comment\n\n:users\n:quit\n/reap help\n")
    assert code == 0
    assert "> # a comment" not in output
    assert "@equitypm  U0EQUITYPM" in section(output, ":users")
    assert "/reap help" not in output


async def test_everything_is_stopped_when_the_shell_returns(settings: Settings):
    await shell(settings, "/reap help\n")
    assert not [t for t in threading.enumerate() if t.name.startswith("localslack")]


# --- the demo's loop ----------------------------------------------------------------------------


async def test_the_demo_starts_at_its_documented_moment_and_its_first_clock_brings_reminders(
    settings: Settings,
):
    code, output = await shell(settings, ":clock 2027-01-06 09:00\n", now=None)
    assert code == 0
    assert datetime(2027, 1, 6, 13, 30, tzinfo=UTC) == DEMO_START
    assert "clock Wednesday 2027-01-06 08:30 EST" in output.splitlines()[0]
    moved = section(output, ":clock 2027-01-06 09:00")
    assert "*1 of your action items needs attention today.*" in moved, "a reminder digest"
    assert moved.count("Time for the FY2027-Q2 REAP check-in") >= 5, "and the check-in prompts"


async def test_click_presses_only_the_current_persons_last_message_and_names_it(settings: Settings):
    script = ":clock 2027-01-06 09:00\n:click 1\n:as @talentld\n:click 4\n"
    code, output = await shell(settings, script, now=DEMO_START)
    assert code == 0
    clock = section(output, ":clock") + "\n"
    dms = re.findall(r"^── DM to @(\w+) · message (\d+)\n((?:   .*\n)*)", clock, re.M)
    assert [who for who, _, _ in dms] == [
        "equitypm",
        "pmodir",
        "talentld",
        "learndev",
        "digeqmgr",
        "gisanlst",
    ], "one step's DMs in the workspace's order, so message numbers repeat from run to run"
    assert all("[1 " in body for _, _, body in dms), "every message numbers its own controls from 1"
    mine = section(output, ":click 1")
    assert "pressing [1 Check in] on: DM to @equitypm · message 1" in mine
    assert "── modal opened for @equitypm" in mine
    theirs = section(output, ":click 4")
    assert "pressing [4 Check in] on: DM to @talentld · message 3" in theirs
    assert "── modal opened for @talentld" in theirs


async def test_someone_shown_nothing_has_nothing_to_press(settings: Settings):
    code, output = await shell(settings, "/reap list mine\n:as @wifilead\n:click 1\n")
    assert code == 1
    assert "! nothing clickable has been shown to @wifilead yet" in section(output, ":click 1")


async def test_a_control_number_past_the_last_names_the_message(settings: Settings):
    code, output = await shell(settings, "/reap show OIT-1\n:click 9\n")
    assert code == 1
    assert (
        "! there is no control '9' on reply, only @equitypm sees it; its controls are numbered 1 to 3"
        in section(output, ":click 9")
    )


async def test_users_says_the_roles_the_app_gives(settings: Settings):
    script = ":users\n/reap role @pmodir coordinator\n:as @admin\n/reap role @pmodir coordinator\n:users\n"
    code, output = await shell(settings, script)
    assert code == 0
    users = section(output, ":users").splitlines()
    assert "   @equitypm  U0EQUITYPM   Equity Program Manager  (coordinator · OIT · Racial Equity" in users[0]
    assert [line for line in users if "(admin" in line] == [
        "   @admin     U0ADMIN      REAP admin  (admin)  America/New_York"
    ], "the admin is someone of their own; nobody else is quietly one"
    refused = output[output.index("> /reap role") : output.index("> :as @admin")]
    assert "You can't change roles." in refused
    given = output[output.rindex("> /reap role") : output.rindex("> :users")]
    assert "@pmodir is now a coordinator." in given
    after = output[output.rindex("> :users") :]
    assert "@pmodir    U0PMODIR     Project Management Office Director  (coordinator · OIT" in after, (
        ":users reads the roles afresh"
    )


async def test_the_shortcut_turns_a_message_into_an_item(settings: Settings):
    script = (
        ":shortcut 1\n"
        ":say Translate the device-lending guide into Spanish\n"
        ":shortcut 1\n"
        ':submit strategy="Digital equity"\n'
    )
    code, output = await shell(settings, script)
    assert code == 1, "the first :shortcut had no message to act on"
    assert "! there is no message '1'; no message has been shown yet" in output
    said = section(output, ":say")
    assert "── @equitypm in #general · message 1\n   Translate the device-lending guide into Spanish" in said
    opened = output[output.rindex("> :shortcut 1") :]
    assert "Create action item from message 1 (@equitypm in #general)" in opened
    assert "[now: Translate the device-lending guide into Spanish]" in opened
    assert "https://slack.com/archives/C0GENERAL/p" in opened
    assert "*OIT-18* Translate the device-lending guide into Spanish" in section(output, ":submit")


async def test_a_rollup_goes_to_the_dei_and_department_channels_with_its_chart_saved(settings: Settings):
    code, output = await shell(settings, "/reap rollup Q2\n")
    assert code == 0
    rollup = section(output, "/reap rollup Q2")
    assert "── #dei · message" in rollup and "── #oit-reap · message" in rollup
    saved = re.findall(r"^   saved to (.+\.png)$", rollup, re.M)
    assert saved and "(empty)" not in rollup
    for path in saved:
        assert Path(path).parent == folder_of(settings)
        assert is_png(Path(path))


async def test_log_lines_go_to_the_log_file_never_into_the_transcript(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    class FailingSlack(LocalSlack):
        """localslack whose first views.publish fails, which the app logs as an error."""

        def start(self) -> LocalSlack:
            self.fail_next("views.publish", Fault(error="internal_error"))
            return super().start()

    monkeypatch.setattr(console, "LocalSlack", FailingSlack)
    out = io.StringIO()
    terminal = logging.StreamHandler(out)  # stderr and the transcript share one terminal
    root = logging.getLogger()
    root.addHandler(terminal)
    try:
        code = await run_shell(
            settings, demo=True, script=io.StringIO(":home\n"), out=out, now=NOW, files=folder_of(settings)
        )
        assert root.handlers.count(terminal) == 1, "the caller's handlers are back afterwards"
    finally:
        root.removeHandler(terminal)
    assert code == 1
    log_file = folder_of(settings) / "reap-shell.log"
    assert "internal_error" in log_file.read_text(encoding="utf-8")
    transcript = out.getvalue()
    assert "Traceback" not in transcript and "internal_error" not in transcript.split("HTTP 500")[0]
    assert f"(the bot logged an error; see {log_file})" in transcript


def test_reap_shell_at_starts_the_clock_there_and_keeps_stdout_for_the_transcript(tmp_path: Path):
    script = tmp_path / "lines.txt"
    script.write_text(":clock\n", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "shell",
            "--demo",
            "--at",
            "2027-03-30T09:00",
            "--script",
            str(script),
            "--output-dir",
            str(tmp_path / "out"),
        ],
        env=cli_env(REAP_LOG_LEVEL="DEBUG"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "clock Tuesday 2027-03-30 09:00 EDT" in result.stdout.splitlines()[0]
    assert " DEBUG " not in result.stdout
    assert " DEBUG " in (tmp_path / "out" / "reap-shell.log").read_text(encoding="utf-8")


# --- other starts -----------------------------------------------------------------------------


async def test_an_existing_database_is_used_as_it_is_without_demo(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'reap.db'}"
    await upgrade_async(url)
    engine = create_engine(url)
    document = parse_plan_file(PLAN.read_text(encoding="utf-8"), filename="plan.yaml")
    async with session_factory(engine)() as session, session.begin():
        await import_plan(session, document=document, team_id="T0PHILLY", now=NOW)
    await engine.dispose()
    mine = Settings(database_url=url, admins=["U0TALENTLD"])
    code, output = await shell(mine, "/reap list mine\n", demo=False)
    assert code == 0
    assert output.startswith("REAP shell: workspace T0PHILLY")
    assert "you are @talentld" in output.splitlines()[0]
    assert "Build recruitment relationships" in section(output, "/reap list mine")


async def test_a_database_never_migrated_says_what_to_run(settings: Settings):
    with pytest.raises(DatabaseNotReady, match="reap db upgrade"):
        await shell(settings, "/reap help\n", demo=False)


async def test_a_plan_file_is_only_for_the_demo(settings: Settings):
    with pytest.raises(PlanNeedsDemo, match="reap import"):
        await shell(settings, "", demo=False, plan_file=PLAN)


async def test_a_missing_demo_plan_is_a_clear_error(settings: Settings, tmp_path: Path):
    with pytest.raises(DemoUnavailable, match="cannot read"):
        await shell(settings, "", plan_file=tmp_path / "nope.yaml")


async def test_the_prompt_reads_lines_as_the_current_user_until_end_of_input(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    lines = iter(["/reap list mine", ":as @talentld", "", ":click 1"])
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        prompts.append(prompt)
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(builtins, "input", fake_input)
    monkeypatch.setattr(console.sys, "stdin", _Terminal())
    out = io.StringIO()
    code = await run_shell(settings, demo=True, script=None, out=out, now=NOW, files=folder_of(settings))
    assert code == 0
    assert prompts == ["@equitypm> ", "@equitypm> ", "@talentld> ", "@talentld> ", "@talentld> "]
    assert "*Your open items* · 2 items" in out.getvalue()
    assert "\x1b[" not in out.getvalue(), "no colour when the output is not a terminal"


class _Terminal(io.StringIO):
    """Standard input that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


# --- pure helpers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "handle"), [("U0EQUITYPM", "equitypm"), ("U0ADMIN", "admin"), ("W12AB", "w12ab")]
)
def test_handles_are_short_lowercase_ids(user_id: str, handle: str):
    assert handle_for(user_id) == handle


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ('note OIT-1 "a <b> & c"', 'note OIT-1 "a &lt;b&gt; &amp; c"'),
        ("assign OIT-1 @maria", "assign OIT-1 <@U0MARIA|maria>"),
        ("assign OIT-1 @U0MARIA.", "assign OIT-1 <@U0MARIA|maria>."),
        ("assign OIT-1 @Maria", "assign OIT-1 <@U0MARIA|maria>"),
        ("assign OIT-1 @ghost", "assign OIT-1 @ghost"),
        ("rollup Q2 #dei-updates", "rollup Q2 <#C0DEI|dei-updates>"),
        ("mail maria@phila.gov", "mail maria@phila.gov"),
        ('note OIT-1 "<@U0MARIA>"', 'note OIT-1 "&lt;@U0MARIA&gt;"'),
    ],
)
def test_typed_text_becomes_what_slack_would_send(typed: str, sent: str):
    escaped = slack_escape(typed)
    assert link_mentions(escaped, users={"U0MARIA": "maria"}, channels={"C0DEI": "dei-updates"}) == sent


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("status=on_track progress=60", {"status": "on_track", "progress": "60"}),
        ('note="talked to DEI" due=2027-01-15', {"note": "talked to DEI", "due": "2027-01-15"}),
        ("note='it''s fine'", {"note": "its fine"}),
        ("title=a=b", {"title": "a=b"}),
        ("due=", {"due": ""}),
        ("", {}),
    ],
)
def test_submit_fields_are_read_with_shell_quoting(text: str, fields: dict[str, str]):
    assert parse_fields(text) == fields


@pytest.mark.parametrize("text", ['note="never closed', "progress", "=60"])
def test_submit_fields_that_cannot_be_read_show_the_usage(text: str):
    with pytest.raises(BadInput, match="usage: :submit"):
        parse_fields(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-03-30 09:00", datetime(2027, 3, 30, 13, 0, tzinfo=UTC)),
        ("2027-03-30", datetime(2027, 3, 30, 13, 0, tzinfo=UTC)),
        ("2027-01-04T09:00", datetime(2027, 1, 4, 14, 0, tzinfo=UTC)),
        ("2027-01-04 09:00+00:00", datetime(2027, 1, 4, 9, 0, tzinfo=UTC)),
    ],
)
def test_clock_times_are_local_unless_they_say_otherwise(text: str, expected: datetime):
    assert parse_clock(text, ZoneInfo("America/New_York")) == expected


def test_a_clock_that_is_not_a_time_shows_the_usage():
    with pytest.raises(BadInput, match=r"usage: :clock YYYY-MM-DD HH:MM"):
        parse_clock("next tuesday", ZoneInfo("America/New_York"))


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Iterator[None]:
    """Every test leaves no localslack server thread behind."""
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("localslack")]
