"""Every console line the README shows a newcomer does in `reap shell --demo` what the README says.

The lines are read from README.md itself: the walkthrough under "Trying it" is run in order as one
session, then every other concrete console line (inline or in a block) in a fresh demo, in the
order the README shows them. Each line has its described outcome checked here; a line added to
the README without one, or one whose outcome changed, fails.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.console import run_shell
from bot.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"

_CONSOLE = re.compile(r"/reap\s+\S|:[a-z]+(\s|$)")  # a bare `/reap` names the command
# Usage lines, not examples: <ref>, [quarter], a | b, …, or a capitalised stand-in (:click N).
_PLACEHOLDER = re.compile(r"<[^>]*>|\[[^\]]*\]|\||…|(?<![\w\-])[A-Z]+(?![\w\-])")
_SPAN = re.compile(r"`([^`]+)`")
# What the benchmarks timed, not lines to type.
_NOT_TYPED = {"Performance"}

Check = Callable[[str, Path], None]


def readme_lines(markdown: str) -> tuple[list[str], list[str]]:
    """The walkthrough's lines, and every other concrete console line in document order."""
    walkthrough: list[str] | None = None
    others: list[str] = []
    prose: list[str] = []
    block: list[str] | None = None
    section = ""
    for raw in markdown.splitlines():
        fence = raw.startswith("```")
        if block is not None and not fence:
            block.append(raw.strip())
        elif fence and block is None:
            others.extend(_examples_in(" ".join(prose)))
            prose, block = [], []
        elif fence and block is not None:
            lines = [line for line in block if _is_example(line)]
            if section == "Trying it" and walkthrough is None:
                walkthrough = lines
            elif section not in _NOT_TYPED:
                others.extend(lines)
            block = None
        elif raw.startswith("## "):
            others.extend(_examples_in(" ".join(prose)))
            prose, section = [], raw[3:].strip()
        elif section not in _NOT_TYPED:
            prose.append(raw)
    others.extend(_examples_in(" ".join(prose)))
    assert walkthrough, "the README has a walkthrough block under '## Trying it'"
    return walkthrough, others


def _examples_in(text: str) -> list[str]:
    return [span.strip() for span in _SPAN.findall(text) if _is_example(span.strip())]


def _is_example(line: str) -> bool:
    return bool(_CONSOLE.match(line)) and not _PLACEHOLDER.search(line)


def steps(output: str) -> list[tuple[str, str]]:
    """(line, what the shell printed for it) for each scripted line, in order."""
    parts = re.split(r"^> (.*)$", output, flags=re.MULTILINE)
    return list(zip(parts[1::2], parts[2::2], strict=True))


async def run(tmp_path: Path, name: str, lines: list[str]) -> list[tuple[str, str]]:
    """Run `lines` in a fresh demo at its documented start, as `reap shell --demo --script` would."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", admins=[])
    out = io.StringIO()
    files = tmp_path / name
    code = await run_shell(
        settings, demo=True, script=io.StringIO("\n".join(lines) + "\n"), out=out, files=files
    )
    output = out.getvalue()
    assert code == 0, output
    assert f"are saved in {files}" in output.splitlines()[1]
    return steps(output)


# --- what each line must do ---------------------------------------------------------------------


def shows(*texts: str, absent: tuple[str, ...] = ()) -> Check:
    """The line's output contains every one of `texts` and none of `absent`."""

    def check(output: str, folder: Path) -> None:
        for text in texts:
            assert text in output
        for text in absent:
            assert text not in output

    return check


def rollup_posted(quarter: str) -> Check:
    """The rollup summary, its thread and its chart in #dei and in #oit-reap, the chart saved."""

    def check(output: str, folder: Path) -> None:
        for channel in ("#dei", "#oit-reap"):
            assert f"── {channel} · message" in output
            assert f"── {channel}, in a thread · message" in output
            assert f"── {channel}, in a thread, file REAP {quarter}" in output
        assert f"REAP rollup {quarter}" in output
        assert "(empty)" not in output
        charts = re.findall(r"^   saved to (.+)$", output, re.MULTILINE)
        assert charts
        for chart in charts:
            assert Path(chart).parent == folder
            assert Path(chart).read_bytes().startswith(b"\x89PNG")

    return check


def both(*checks: Check) -> Check:
    """Every one of `checks`."""

    def check(output: str, folder: Path) -> None:
        for each in checks:
            each(output, folder)

    return check


CHECKIN_SUBMIT = (
    ':submit status:OIT-3=on-track progress:OIT-3=25 note:OIT-3="12 of 40 projects scored" '
    "measure:days-to-equity-review=18"
)
MEASURE = '/reap measure devices-high-need-tracts 2600 Q2 "winter distribution"'

WALKTHROUGH: list[tuple[str, Check]] = [
    ("/reap help", shows("── reply, only @equitypm sees it", "REAP Tracker commands:", "/reap status <ref>")),
    (
        "/reap list mine",
        shows("*Your open items* · 2 items", "*OIT-2* Hire an equity data analyst", "[1 Done]"),
    ),
    (
        ":click 2 1 week",
        shows(
            "pressing [2 Snooze…] on: reply, only @equitypm sees it",
            "── reply (replaces the original)",
            "*OIT-2* Hire an equity data analyst",
            "💤 until 2027-01-13",
        ),
    ),
    (
        ":say Can we map public Wi-Fi gaps by census tract before the next site selection?",
        shows("── @equitypm in #general · message 1"),
    ),
    (
        ":shortcut 1",
        shows(
            "Create action item from message 1 (@equitypm in #general)",
            "── modal opened for @equitypm",
            "[now: Can we map public Wi-Fi gaps by census tract before the next site selection?]",
        ),
    ),
    (
        ':submit strategy="Digital equity" due=2027-03-31',
        shows(
            "Added *OIT-18*.",
            "*OIT-18* Can we map public Wi-Fi gaps",
            "due 2027-03-31 · @equitypm",
            "_Digital equity_",
        ),
    ),
    (
        ":clock 2027-01-06 09:00",
        shows(
            "clock: Wednesday 2027-01-06 09:00 EST",
            "── DM to @talentld · message",
            "*1 of your action items needs attention today.*",
            "── DM to @pmodir · message",
            "Time for the FY2027-Q2 REAP check-in.",
        ),
    ),
    (":as @talentld", shows("you are now @talentld (Talent Acquisition Lead)")),
    (
        ":click 2 1 week",
        shows(
            "pressing [2 Snooze…] on: DM to @talentld · message",
            "── DM to @talentld (updated) · message",
            "*OIT-8* Review OIT job postings",
            "💤 until 2027-01-13",
        ),
    ),
    (":as @pmodir", shows("you are now @pmodir (Project Management Office Director)")),
    (
        ":click 1",
        shows(
            "pressing [1 Check in] on: DM to @pmodir · message",
            "── modal opened for @pmodir",
            "FY2027-Q2 check-in",
            "measure:days-to-equity-review",
        ),
    ),
    (
        CHECKIN_SUBMIT,
        shows("── DM to @pmodir · message", "Thank you! Your FY2027-Q2 check-in covers 4 item(s)."),
    ),
    (":as @equitypm", shows("you are now @equitypm (Equity Program Manager)")),
    (
        "/reap checkin status Q2",
        shows(
            "*FY2027-Q2 check-in* · open, due 2027-01-15",
            "*OIT*: 1 responded",
            absent=("@pmodir",),
        ),
    ),
    (MEASURE, shows("Recorded devices-high-need-tracts = 2,600 for FY2027-Q2.")),
    (
        "/reap rollup Q2",
        both(
            shows("Posting the FY2027-Q2 rollup to #dei, #oit-reap."),
            rollup_posted("FY2027-Q2"),
            shows("latest 2,600 devices (FY2027-Q2)", "latest 18 days (FY2027-Q2)"),
        ),
    ),
]

# The other examples, in the README's order, in a fresh demo.
ELSEWHERE: list[tuple[str, Check]] = [
    (
        ":users",
        shows(
            "@equitypm  U0EQUITYPM   Equity Program Manager  (coordinator · OIT",
            "@pmodir    U0PMODIR     Project Management Office Director  (member · OIT",
            "@admin     U0ADMIN      REAP admin  (admin)",
        ),
    ),
    (":help", shows(":click N [option]", ":shortcut N", ":clock [YYYY-MM-DD HH:MM]")),
    ("/reap help role", shows("/reap role @user <member|coordinator|dei|admin> [department]")),
    ("/reap requests", shows("Waiting for a coordinator")),
    (
        "/reap checkin schedule FY2027-Q3 2027-04-22",
        shows(
            "The FY2027-Q3 DEI meeting is on 2027-04-22. The check-in opens 2027-04-08 and is due 2027-04-19."
        ),
    ),
    ("/reap checkin start", shows("The FY2027-Q3 check-in is open")),
    ("/reap checkin status", shows("*FY2027-Q3 check-in* · open", "waiting on @digeqmgr")),
    (
        "/reap checkin close",
        both(
            shows("The FY2027-Q3 check-in is closed", "── DM to @equitypm", "did not respond"),
            rollup_posted("FY2027-Q3"),
        ),
    ),
    (MEASURE, shows("Recorded devices-high-need-tracts = 2,600 for FY2027-Q2.")),
    ("/reap measures", shows("`devices-high-need-tracts`", "`home-internet`", "`pipeline-hires`")),
    ("/reap score OIT-15 need=most barriers=fully", shows("scores *14* of 15")),
    ("/reap score OIT-15", shows("Score OIT-15", "scores *14* of 15")),
    ("/reap list ranked", shows("1. *OIT-15*", "2. *OIT-16*", "3. *OIT-17*")),
]


def test_the_readme_shows_exactly_the_lines_checked_here():
    walkthrough, others = readme_lines(README.read_text(encoding="utf-8"))
    assert walkthrough == [line for line, _ in WALKTHROUGH]
    assert others == [line for line, _ in ELSEWHERE]


@pytest.mark.parametrize(
    ("name", "lines"),
    [("walkthrough", WALKTHROUGH), ("elsewhere", ELSEWHERE)],
    ids=["walkthrough", "elsewhere"],
)
async def test_every_readme_console_line_does_what_the_readme_says(
    tmp_path: Path, name: str, lines: list[tuple[str, Check]]
):
    ran = await run(tmp_path, name, [line for line, _ in lines])
    assert [line for line, _ in ran] == [line for line, _ in lines]
    for (line, check), (_, output) in zip(lines, ran, strict=True):
        assert "   ! " not in output, f"{line!r} failed:\n{output}"
        try:
            check(output, tmp_path / name)
        except AssertionError as exc:
            raise AssertionError(f"{line!r} did not do what the README says:\n{output}") from exc


def test_usage_lines_and_stand_ins_are_not_taken_for_examples():
    markdown = (
        "## Trying it\n\n```\n# a comment\n/reap help\n:click 1\n```\n\n"
        "Press with `:click N`, see `/reap pause <date>` and `:users`.\n\n"
        "```\n/reap list [mine | all]\n/reap show OIT-3\n```\n"
    )
    assert readme_lines(markdown) == (["/reap help", ":click 1"], [":users", "/reap show OIT-3"])
