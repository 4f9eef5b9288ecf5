"""A progress bar for long commands: on a terminal only, and only once the work has taken a second."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

DELAY_SECONDS = 1.0  # quicker work finishes before a bar would be worth reading
INTERVAL_SECONDS = 0.1  # redraws at most this often: a terminal is slow next to an import
WIDTH = 24


def render(label: str, what: str, done: int, total: int, *, width: int = WIDTH) -> str:
    """One line such as `big.yaml: items [######------] 50% 5,000/10,000` (no bar while total is 0)."""
    if total <= 0:
        return f"{label}: {what}…"
    done = max(0, min(done, total))
    filled = width * done // total
    bar = "#" * filled + "-" * (width - filled)
    return f"{label}: {what} [{bar}] {100 * done // total:3d}% {done:,}/{total:,}"


class ProgressBar:
    """Draws `render` lines over each other on `stream`, which it leaves as it found it when closed.

    Silent when the stream is not a terminal (a pipe, a file, cron's mail) and for the first
    `delay` seconds, so quick commands and scripts print exactly what they did before.
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        label: str,
        clock: Callable[[], float] = time.monotonic,
        delay: float = DELAY_SECONDS,
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        isatty = getattr(stream, "isatty", None)
        self.enabled = bool(isatty and isatty())
        self.stream = stream
        self.label = label
        self.clock = clock
        self.delay = delay
        self.interval = interval
        self.started = clock()
        self.drawn_at: float | None = None
        self.width = 0  # of the line on screen, to blank it out

    @property
    def shown(self) -> bool:
        """Whether a line is on the screen now."""
        return self.drawn_at is not None

    def update(self, what: str, done: int, total: int) -> None:
        """Report progress: `done` of `total` units (0 total: not countable), doing `what`."""
        if not self.enabled:
            return
        now = self.clock()
        if now - self.started < self.delay:
            return
        if self.drawn_at is not None and now - self.drawn_at < self.interval and done < total:
            return
        self._draw(render(self.label, what, done, total))
        self.drawn_at = now

    def close(self) -> None:
        """Blank out the bar, if one was drawn, so what the command prints next starts clean."""
        if self.shown:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.drawn_at = None
            self.width = 0

    def _draw(self, line: str) -> None:
        padding = " " * max(0, self.width - len(line))
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self.width = len(line)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
