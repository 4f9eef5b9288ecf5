"""The progress bar shows on a terminal only, only after a second, redraws sparingly, and leaves
the line blank when it is done."""

from __future__ import annotations

import io

from bot.progress import ProgressBar, render


class Terminal(io.StringIO):
    """What a terminal would receive; `isatty` says it is one."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> str:
        """The line as a terminal would show it: each carriage return starts it over."""
        line = ""
        for part in self.getvalue().split("\r"):
            line = part + line[len(part) :]
        return line


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def bar(stream: io.StringIO, clock: Clock) -> ProgressBar:
    return ProgressBar(stream, label="reap import big.yaml", clock=clock)


def test_render_shows_the_share_done_with_thousands_separated():
    assert render("big.yaml", "items", 5_000, 10_000, width=10) == (
        "big.yaml: items [#####-----]  50% 5,000/10,000"
    )
    assert render("big.yaml", "items", 12, 10, width=4) == "big.yaml: items [####] 100% 10/10"
    assert render("big.yaml", "reading the file", 0, 0) == "big.yaml: reading the file…"


def test_nothing_is_drawn_during_the_first_second():
    stream, clock = Terminal(), Clock()
    progress = bar(stream, clock)
    clock.now += 0.9
    progress.update("items", 9_000, 10_000)
    progress.close()
    assert stream.getvalue() == ""


def test_after_a_second_the_bar_is_drawn_and_redrawn_in_place():
    stream, clock = Terminal(), Clock()
    progress = bar(stream, clock)
    clock.now += 1.2
    progress.update("items", 2_000, 10_000)
    assert stream.screen() == render("reap import big.yaml", "items", 2_000, 10_000)
    clock.now += 0.5
    progress.update("saving", 0, 0)
    assert stream.screen().rstrip() == "reap import big.yaml: saving…"
    assert "\n" not in stream.getvalue(), "one line, overwritten"


def test_redraws_are_throttled_but_the_last_step_always_shows():
    stream, clock = Terminal(), Clock()
    progress = bar(stream, clock)
    clock.now += 1.0
    progress.update("items", 1, 10_000)
    writes = stream.getvalue().count("\r")
    for done in range(2, 500):
        clock.now += 0.0001
        progress.update("items", done, 10_000)
    assert stream.getvalue().count("\r") == writes, "no redraw within 0.1 s"
    progress.update("items", 10_000, 10_000)
    assert stream.screen() == render("reap import big.yaml", "items", 10_000, 10_000)


def test_closing_blanks_the_line_so_the_report_starts_clean():
    stream, clock = Terminal(), Clock()
    with bar(stream, clock) as progress:
        clock.now += 2
        progress.update("items", 10, 100)
    assert stream.screen().strip() == ""
    assert stream.getvalue().endswith("\r")
    assert not progress.shown


def test_a_stream_that_is_not_a_terminal_gets_nothing():
    stream, clock = io.StringIO(), Clock()
    with bar(stream, clock) as progress:
        clock.now += 60
        progress.update("items", 10, 100)
        progress.update("saving", 0, 0)
    assert stream.getvalue() == ""
