"""The rollup chart is a real PNG of item status by strategy beside measure progress."""

from __future__ import annotations

import struct
import zlib
from datetime import date

import pytest

from domain.rollup import STATUSES, Changes, DepartmentRollup, MeasureLine, Rollup, StrategyRollup
from domain.status import MeasureStatus
from reports.chart import rollup_chart_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def measure(name: str, status: MeasureStatus, progress: float | None) -> MeasureLine:
    """A measure line with progress as a share of the way from baseline to target."""
    return MeasureLine(
        key=name.lower(),
        name=name,
        unit="%",
        baseline=10,
        latest=None if progress is None else 10 + 20 * progress,
        target=30,
        status=status,
        change=None,
        progress=progress,
        expected=0.6,
    )


def strategy(name: str, measures: list[MeasureLine], **counts: int) -> StrategyRollup:
    """A strategy with the given item counts."""
    return StrategyRollup(
        key=name.lower(),
        name=name,
        counts={s: counts.get(s, 0) for s in STATUSES},
        percent_complete=40.0,
        on_time_rate=None,
        overdue=[],
        blocked=[],
        measures=measures,
    )


def rollup_of(strategies: list[StrategyRollup]) -> Rollup:
    """A one-department rollup holding these strategies."""
    department = DepartmentRollup(
        key="OIT",
        name="Office of Innovation and Technology",
        report_channel=None,
        coordinators=[],
        strategies=strategies,
        changes=Changes([], [], [], [], []),
        response_rate=None,
        non_responders=[],
        stale=[],
        orphaned=[],
    )
    return Rollup(
        quarter="FY2027-Q2",
        as_of=date(2026, 11, 20),
        departments=[department],
        counts={},
        percent_complete=40.0,
        on_time_rate=None,
        response_rate=None,
    )


@pytest.fixture
def office_rollup() -> Rollup:
    """Three strategies in every colour, with measures on, behind, and past their targets."""
    return rollup_of(
        [
            strategy(
                "Equity projects",
                [measure("Contracts to M/WBE firms", MeasureStatus.ON_TRACK, 0.62)],
                on_track=4,
                at_risk=2,
                done=3,
            ),
            strategy(
                "Workplace equity",
                [
                    measure("Days to fill roles", MeasureStatus.OFF_TRACK, -0.1),
                    measure("Met one", MeasureStatus.MET, 1.2),
                ],
                off_track=1,
                blocked=2,
                not_started=5,
                dropped=1,
            ),
            strategy(
                "Budget $5 $10 for <b>Wi-Fi</b> {{ 7*7 }}",
                [measure("No reading yet", MeasureStatus.NO_DATA, None)],
                on_track=7,
            ),
        ]
    )


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG header, after checking the header chunk's CRC."""
    assert data.startswith(PNG_SIGNATURE)
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    body = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert crc == zlib.crc32(kind + body)
    width, height = struct.unpack(">II", body[:8])
    return width, height


def test_the_chart_is_a_valid_png_of_real_size(office_rollup: Rollup):
    data = rollup_chart_png(office_rollup)
    width, height = png_size(data)
    assert width == 1400
    assert height == pytest.approx(308, abs=1)  # four measure rows: 3.08 inches at 100 dpi
    assert len(data) > 20_000  # bars, labels and a legend, not an empty canvas
    assert data.endswith(b"IEND\xaeB`\x82")


def test_more_strategies_make_a_taller_chart(office_rollup: Rollup):
    many = rollup_of([strategy(f"Strategy {n}", [], on_track=n) for n in range(30)])
    assert png_size(rollup_chart_png(many))[1] > png_size(rollup_chart_png(office_rollup))[1]


def test_an_empty_rollup_still_draws_a_chart():
    empty = Rollup(
        quarter="FY2027-Q2",
        as_of=date(2026, 11, 20),
        departments=[],
        counts={},
        percent_complete=0.0,
        on_time_rate=None,
        response_rate=None,
    )
    width, height = png_size(rollup_chart_png(empty))
    assert (width, height) == (1400, pytest.approx(212, abs=1))
